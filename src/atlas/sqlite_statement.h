// A thin RAII layer over SQLite prepared statements; every failure becomes a
// neuronlens::Error naming the atlas file and SQLite's message.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <ctime>
#include <string>
#include <string_view>

#include "neuronlens/error.h"

namespace neuronlens::sql {

[[noreturn]] inline void fail(sqlite3* db, const std::string& what) {
  const char* file = db ? sqlite3_db_filename(db, "main") : nullptr;
  throw bad_file(std::string(file && *file ? file : "atlas") + ": " + what + ": " + (db ? sqlite3_errmsg(db) : "?"));
}

inline void exec(sqlite3* db, const std::string& sql) {
  char* message = nullptr;
  if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message) != SQLITE_OK) {
    std::string m = message ? message : "?";
    sqlite3_free(message);
    const char* file = sqlite3_db_filename(db, "main");
    throw bad_file(std::string(file && *file ? file : "atlas") + ": " + m);
  }
}

// Now, as the atlas records times: "2026-12-07T02:04:00Z".
inline std::string now_utc() {
  const std::time_t t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) : db_(db) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt_, nullptr) != SQLITE_OK) fail(db, "cannot prepare query");
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& bind(int i, int64_t v) { check(sqlite3_bind_int64(stmt_, i, v)); return *this; }
  Statement& bind(int i, int v) { return bind(i, static_cast<int64_t>(v)); }
  Statement& bind(int i, double v) { check(sqlite3_bind_double(stmt_, i, v)); return *this; }
  Statement& bind(int i, const std::string& v) {
    check(sqlite3_bind_text(stmt_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT));
    return *this;
  }

  // `bytes` must stay alive until the statement runs (SQLITE_STATIC).
  Statement& bind_blob(int i, const void* bytes, size_t size) {
    check(sqlite3_bind_blob64(stmt_, i, bytes, static_cast<sqlite3_uint64>(size), SQLITE_STATIC));
    return *this;
  }

  // Advances; true while a row is available.
  bool step() {
    const int rc = sqlite3_step(stmt_);
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    fail(db_, "query failed");
  }
  void run() { while (step()) {} reset(); }
  void reset() { sqlite3_reset(stmt_); sqlite3_clear_bindings(stmt_); }

  int64_t int64(int col) const { return sqlite3_column_int64(stmt_, col); }
  double real(int col) const { return sqlite3_column_double(stmt_, col); }
  // The column's bytes (empty for NULL); valid until the next step or reset.
  std::string_view blob(int col) const {
    const void* p = sqlite3_column_blob(stmt_, col);
    return p ? std::string_view(static_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string_view();
  }
  std::string text(int col) const {
    const auto* p = sqlite3_column_text(stmt_, col);
    return p ? std::string(reinterpret_cast<const char*>(p), static_cast<size_t>(sqlite3_column_bytes(stmt_, col)))
             : std::string();
  }

 private:
  void check(int rc) { if (rc != SQLITE_OK) fail(db_, "cannot bind a value"); }
  sqlite3* db_;
  sqlite3_stmt* stmt_ = nullptr;
};

}  // namespace neuronlens::sql

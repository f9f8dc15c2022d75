// The SQLite atlas (schema and its rationale: docs/atlas.md).
#include "neuronlens/atlas.h"

#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>

#include "atlas/neuron_rows.h"
#include "atlas/sqlite_statement.h"
#include "neuronlens/error.h"
#include "neuronlens/version.h"

namespace neuronlens {
namespace {

constexpr const char* kFormat = "neuronlens-atlas";
constexpr int kSchemaVersion = 1;

// Finding neurons by top-k token (Atlas::neurons_with_token). Not kept up to
// date during a map: Atlas::BulkWrite.
constexpr const char* kNeuronTokenIndex =
    "CREATE INDEX IF NOT EXISTS neuron_tokens_by_token ON neuron_tokens (token, prob DESC)";

constexpr const char* kSchema = R"sql(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE kinds (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
INSERT INTO kinds VALUES (0, 'up'), (1, 'gate'), (2, 'down');
CREATE TABLE vocab (id INTEGER PRIMARY KEY, text TEXT NOT NULL, type INTEGER NOT NULL);
CREATE VIRTUAL TABLE vocab_fts USING fts5(text, content='vocab', content_rowid='id', tokenize='trigram');
CREATE TABLE neurons (
  kind INTEGER NOT NULL, layer INTEGER NOT NULL, neuron INTEGER NOT NULL,
  logsumexp REAL NOT NULL, entropy REAL NOT NULL, topk_mass REAL NOT NULL,
  top1_token INTEGER NOT NULL, top1_prob REAL NOT NULL,
  PRIMARY KEY (kind, layer, neuron)) WITHOUT ROWID;
CREATE TABLE neuron_tokens (
  kind INTEGER NOT NULL, layer INTEGER NOT NULL, neuron INTEGER NOT NULL, rank INTEGER NOT NULL,
  token INTEGER NOT NULL, logit REAL NOT NULL, prob REAL NOT NULL,
  PRIMARY KEY (kind, layer, neuron, rank)) WITHOUT ROWID;
CREATE TABLE layers_done (kind INTEGER NOT NULL, layer INTEGER NOT NULL, finished_at TEXT NOT NULL,
  PRIMARY KEY (kind, layer));
)sql";

sqlite3* open_db(const std::string& path, int flags) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, flags, nullptr) != SQLITE_OK) {
    std::string m = db ? sqlite3_errmsg(db) : "out of memory";
    sqlite3_close(db);
    throw bad_file(path + ": cannot open atlas: " + m);
  }
  sqlite3_busy_timeout(db, 5000);
  return db;
}

}  // namespace

Atlas::Atlas(Atlas&& other) noexcept { *this = std::move(other); }
Atlas& Atlas::operator=(Atlas&& other) noexcept {
  if (this != &other) {
    if (db_) sqlite3_close(db_);
    path_ = std::move(other.path_);
    settings_ = std::move(other.settings_);
    db_ = other.db_;
    other.db_ = nullptr;
  }
  return *this;
}
Atlas::~Atlas() {
  if (db_) sqlite3_close(db_);
}

std::string Atlas::meta(const std::string& key) const {
  sql::Statement q(db_, "SELECT value FROM meta WHERE key = ?");
  q.bind(1, key);
  return q.step() ? q.text(0) : std::string();
}

void Atlas::load_settings() {
  // A file that is not SQLite, or SQLite without our tables, fails here.
  bool has_meta = false;
  try {
    sql::Statement q(db_, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'meta'");
    has_meta = q.step() && q.int64(0) == 1;
  } catch (const Error&) {
    throw bad_file(path_ + ": not a neuronlens atlas (not an SQLite database, or a corrupt one)");
  }
  if (!has_meta || meta("format") != kFormat) throw bad_file(path_ + ": not a neuronlens atlas (no atlas metadata)");
  const std::string version = meta("schema_version");
  if (version != std::to_string(kSchemaVersion)) {
    throw bad_file(path_ + ": atlas schema version " + version + " is not supported (expected " +
                   std::to_string(kSchemaVersion) + ")");
  }
  settings_.model_name = meta("model_name");
  settings_.model_path = meta("model_path");
  settings_.model_sha256 = meta("model_sha256");
  settings_.architecture = meta("architecture");
  settings_.n_layers = meta_integer("n_layers");
  settings_.d_model = meta_integer("d_model");
  settings_.d_ffn = meta_integer("d_ffn");
  settings_.vocab_size = meta_integer("vocab_size");
  settings_.top_k = static_cast<int>(meta_integer("top_k"));
  settings_.norm = norm_mode_from_name(meta("norm"));
  const std::string read_norm = meta("read_norm");
  settings_.read_norm = read_norm.empty() ? ReadNorm::None : read_norm_from_name(read_norm);
  settings_.method = meta("method");
  settings_.precision = meta("precision");
  settings_.precision_bound = meta("precision_bound");
  auto real = [&](const char* key) {
    const std::string v = meta(key);
    return v.empty() ? 0.0 : std::strtod(v.c_str(), nullptr);
  };
  settings_.max_logsumexp_error = real("max_logsumexp_error");
  settings_.max_entropy_error = real("max_entropy_error");
}

int64_t Atlas::meta_integer(const std::string& key) const {
  const std::string v = meta(key);
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  throw bad_file(path_ + ": corrupt atlas: metadata '" + key + "' is '" + v + "', expected an integer");
}

Atlas Atlas::open(const std::string& path) {
  if (!std::filesystem::exists(path)) throw bad_file(path + ": no such atlas file");
  Atlas atlas;
  atlas.path_ = path;
  atlas.db_ = open_db(path, SQLITE_OPEN_READONLY);
  atlas.load_settings();
  return atlas;
}

Atlas Atlas::create_or_resume(const std::string& path, const AtlasSettings& s, const Vocabulary& vocab) {
  const bool exists = std::filesystem::exists(path);
  Atlas atlas;
  atlas.path_ = path;
  atlas.db_ = open_db(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  // A large page cache keeps the tables' B-trees in memory while a map
  // appends to them.
  sql::exec(atlas.db_, "PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA cache_size = -262144;");
  if (exists) {
    atlas.load_settings();
    const AtlasSettings& have = atlas.settings_;
    auto mismatch = [&](const std::string& what, const std::string& found, const std::string& wanted) {
      throw bad_input(path + ": this atlas was made with " + what + " " + found + ", not " + wanted +
                      "; write to a new atlas file or delete this one");
    };
    if (have.model_sha256 != s.model_sha256) {
      mismatch("model", have.model_name + " (sha256 " + have.model_sha256.substr(0, 12) + ")",
               s.model_name + " (sha256 " + s.model_sha256.substr(0, 12) + ")");
    }
    if (have.norm != s.norm) {
      mismatch("--norm", std::string(norm_mode_name(have.norm)), std::string(norm_mode_name(s.norm)));
    }
    if (have.read_norm != s.read_norm) {
      mismatch("--read-norm", std::string(read_norm_name(have.read_norm)), std::string(read_norm_name(s.read_norm)));
    }
    if (have.top_k != s.top_k) mismatch("--top-k", std::to_string(have.top_k), std::to_string(s.top_k));
    // Atlases from before the precision was recorded were float32 maps.
    const std::string have_precision = have.precision.empty() ? "exact" : have.precision;
    if (!s.precision.empty() && have_precision != s.precision) {
      mismatch("--precision", have_precision,
               s.precision + (have_precision == "bf16" ? " (on a CPU without bf16 units, --backend "
                                                          "cpu-avx2-bf16emu continues it with the same results)"
                                                        : ""));
    }
    return atlas;
  }
  sql::exec(atlas.db_, "BEGIN");
  sql::exec(atlas.db_, kSchema);
  sql::exec(atlas.db_, kNeuronTokenIndex);
  {
    sql::Statement put(atlas.db_, "INSERT INTO meta (key, value) VALUES (?, ?)");
    auto set = [&](const std::string& k, const std::string& v) {
      put.bind(1, k).bind(2, v);
      put.run();
    };
    set("format", kFormat);
    set("schema_version", std::to_string(kSchemaVersion));
    set("neuronlens_version", std::string(kVersion));
    set("created_at", sql::now_utc());
    set("model_name", s.model_name);
    set("model_path", s.model_path);
    set("model_sha256", s.model_sha256);
    set("architecture", s.architecture);
    set("n_layers", std::to_string(s.n_layers));
    set("d_model", std::to_string(s.d_model));
    set("d_ffn", std::to_string(s.d_ffn));
    set("vocab_size", std::to_string(s.vocab_size));
    set("norm", std::string(norm_mode_name(s.norm)));
    set("top_k", std::to_string(s.top_k));
    set("read_norm", std::string(read_norm_name(s.read_norm)));
    set("method", s.method.empty() ? "p = softmax(W_U . norm(v)) for each FFN vector v (arXiv 2501.02688)" : s.method);
    set("precision", s.precision);
    set("precision_bound", s.precision_bound);
    set("max_logsumexp_error", "0");
    set("max_entropy_error", "0");

    sql::Statement add(atlas.db_, "INSERT INTO vocab (id, text, type) VALUES (?, ?, ?)");
    for (int64_t id = 0; id < s.vocab_size; ++id) {
      // Embedding rows past the tokenizer's tokens are padding.
      if (id < vocab.size()) {
        const Token& t = vocab.token(id);
        add.bind(1, id).bind(2, t.display).bind(3, static_cast<int64_t>(t.type));
      } else {
        add.bind(1, id).bind(2, "<pad " + std::to_string(id) + ">").bind(3, static_cast<int64_t>(TokenType::Unused));
      }
      add.run();
    }
    sql::exec(atlas.db_, "INSERT INTO vocab_fts (rowid, text) SELECT id, text FROM vocab");
  }
  sql::exec(atlas.db_, "COMMIT");
  atlas.load_settings();
  return atlas;
}

bool Atlas::layer_done(VectorKind kind, int64_t layer) const {
  sql::Statement q(db_, "SELECT 1 FROM layers_done WHERE kind = ? AND layer = ?");
  q.bind(1, static_cast<int64_t>(kind)).bind(2, layer);
  return q.step();
}

std::vector<std::pair<VectorKind, int64_t>> Atlas::layers_done() const {
  std::vector<std::pair<VectorKind, int64_t>> out;
  sql::Statement q(db_, "SELECT kind, layer FROM layers_done ORDER BY kind, layer");
  while (q.step()) out.emplace_back(static_cast<VectorKind>(q.int64(0)), q.int64(1));
  return out;
}

Atlas::BulkWrite::BulkWrite(Atlas& atlas) : atlas_(&atlas) {
  sql::exec(atlas.db_, "DROP INDEX IF EXISTS neuron_tokens_by_token");
}

void Atlas::BulkWrite::finish() {
  if (atlas_ == nullptr) return;
  Atlas* atlas = atlas_;
  atlas_ = nullptr;
  sql::exec(atlas->db_, kNeuronTokenIndex);
}

Atlas::BulkWrite::~BulkWrite() {
  try {
    finish();
  } catch (...) {  // the next map builds it; reads are right without it
  }
}

void Atlas::write_layer(VectorKind kind, int64_t layer, const std::vector<NeuronDecoding>& decodings) {
  sql::exec(db_, "BEGIN IMMEDIATE");
  try {
    const auto k = static_cast<int64_t>(kind);
    // A layer interrupted mid-write was rolled back, but clear it anyway so
    // a rewrite never collides with leftovers.
    sql::Statement clear_neurons(db_, "DELETE FROM neurons WHERE kind = ? AND layer = ?");
    clear_neurons.bind(1, k).bind(2, layer);
    clear_neurons.run();
    sql::Statement clear_tokens(db_, "DELETE FROM neuron_tokens WHERE kind = ? AND layer = ?");
    clear_tokens.bind(1, k).bind(2, layer);
    clear_tokens.run();
    sql::Statement add_neuron(db_, "INSERT INTO neurons VALUES (?, ?, ?, ?, ?, ?, ?, ?)");
    sql::Statement add_token(db_, "INSERT INTO neuron_tokens VALUES (?, ?, ?, ?, ?, ?, ?)");
    for (size_t i = 0; i < decodings.size(); ++i) {
      const NeuronDecoding& r = decodings[i];
      const auto index = static_cast<int64_t>(i);
      add_neuron.bind(1, k).bind(2, layer).bind(3, index).bind(4, r.logsumexp).bind(5, r.entropy).bind(6, r.topk_mass);
      add_neuron.bind(7, static_cast<int64_t>(r.top_ids.at(0))).bind(8, std::exp(r.top_logits.at(0) - r.logsumexp));
      add_neuron.run();
      for (size_t rank = 0; rank < r.top_ids.size(); ++rank) {
        add_token.bind(1, k).bind(2, layer).bind(3, index).bind(4, static_cast<int64_t>(rank));
        add_token.bind(5, static_cast<int64_t>(r.top_ids[rank])).bind(6, r.top_logits[rank]);
        add_token.bind(7, std::exp(r.top_logits[rank] - r.logsumexp));
        add_token.run();
      }
    }
    sql::Statement done(db_, "INSERT OR REPLACE INTO layers_done VALUES (?, ?, ?)");
    done.bind(1, k).bind(2, layer).bind(3, sql::now_utc());
    done.run();
    for (const NeuronDecoding& r : decodings) {
      settings_.max_logsumexp_error = std::max(settings_.max_logsumexp_error, r.logsumexp_error);
      settings_.max_entropy_error = std::max(settings_.max_entropy_error, r.entropy_error);
    }
    sql::Statement put(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    char text[32];
    std::snprintf(text, sizeof text, "%.17g", settings_.max_logsumexp_error);
    put.bind(1, std::string("max_logsumexp_error")).bind(2, std::string(text));
    put.run();
    std::snprintf(text, sizeof text, "%.17g", settings_.max_entropy_error);
    put.bind(1, std::string("max_entropy_error")).bind(2, std::string(text));
    put.run();
    sql::exec(db_, "COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::optional<AtlasNeuron> Atlas::neuron(VectorKind kind, int64_t layer, int64_t index) const {
  sql::Statement q(db_, std::string(atlas_rows::kNeuronColumns) + "WHERE kind = ? AND layer = ? AND neuron = ?");
  q.bind(1, static_cast<int64_t>(kind)).bind(2, layer).bind(3, index);
  if (!q.step()) return std::nullopt;
  AtlasNeuron n = atlas_rows::neuron_from_row(q, kind, layer);
  sql::Statement top(db_, atlas_rows::kTopTokensQuery);
  atlas_rows::read_top_tokens(top, n, INT64_MAX);
  return n;
}

std::string Atlas::token_text(int32_t id) const {
  sql::Statement q(db_, "SELECT text FROM vocab WHERE id = ?");
  q.bind(1, static_cast<int64_t>(id));
  if (q.step()) return q.text(0);
  std::string unknown = "<";  // built in steps: GCC 12 warns falsely on "<" + to_string
  unknown += std::to_string(id);
  unknown += ">";
  return unknown;
}

int64_t Atlas::vocab_rows() const {
  sql::Statement q(db_, "SELECT count(*) FROM vocab");
  return q.step() ? q.int64(0) : 0;
}

Vocabulary Atlas::vocabulary() const {
  std::vector<std::string> raw;
  std::vector<TokenType> types;
  sql::Statement q(db_, "SELECT id, text, type FROM vocab ORDER BY id");
  while (q.step()) {
    if (q.int64(0) != static_cast<int64_t>(raw.size()))
      throw bad_file(path_ + ": corrupt atlas: vocabulary ids have gaps");
    raw.push_back(byte_level_encode(q.text(1)));
    const int64_t type = q.int64(2);
    types.push_back(type >= 0 && type <= 6 ? static_cast<TokenType>(type) : TokenType::Undefined);
  }
  return Vocabulary::from_tokens(VocabEncoding::ByteLevelBpe, std::move(raw), std::move(types));
}

std::vector<double> Atlas::layer_logsumexp(VectorKind kind, int64_t layer) const {
  std::vector<double> out;
  sql::Statement q(db_, "SELECT neuron, logsumexp FROM neurons WHERE kind = ? AND layer = ? ORDER BY neuron");
  q.bind(1, static_cast<int64_t>(kind)).bind(2, layer);
  while (q.step()) {
    if (q.int64(0) != static_cast<int64_t>(out.size()))
      throw bad_file(path_ + ": corrupt atlas: neuron rows have gaps");
    out.push_back(q.real(1));
  }
  return out;
}

std::vector<Atlas::TokenHit> Atlas::neurons_with_token(int32_t token) const {
  std::vector<TokenHit> out;
  sql::Statement q(db_,
                   "SELECT kind, layer, neuron, rank, logit, prob FROM neuron_tokens WHERE token = ? "
                   "ORDER BY prob DESC");
  q.bind(1, static_cast<int64_t>(token));
  while (q.step()) {
    out.push_back({static_cast<VectorKind>(q.int64(0)), q.int64(1), q.int64(2), static_cast<int>(q.int64(3)), q.real(4),
                   q.real(5)});
  }
  return out;
}

std::vector<int32_t> Atlas::search_tokens(const std::string& text, int limit) const {
  std::vector<int32_t> out;
  // The trigram index needs three characters; shorter queries scan.
  const bool use_index = text.size() >= 3;
  sql::Statement q(db_, use_index ? "SELECT rowid FROM vocab_fts WHERE vocab_fts MATCH ? ORDER BY length(text), rowid "
                                    "LIMIT ?"
                                  : "SELECT id FROM vocab WHERE instr(text, ?) > 0 ORDER BY length(text), id LIMIT ?");
  std::string pattern = text;
  if (use_index) {
    // Quote as one FTS5 string so operators in the text are literal.
    std::string quoted = "\"";
    for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c);
    pattern = quoted + "\"";
  }
  q.bind(1, pattern).bind(2, static_cast<int64_t>(limit));
  while (q.step()) out.push_back(static_cast<int32_t>(q.int64(0)));
  return out;
}

std::vector<Atlas::LayerSummary> Atlas::summarize(VectorKind kind, double threshold) const {
  std::vector<LayerSummary> out;
  sql::Statement q(db_,
                   "SELECT layer, count(*), avg(entropy), sum(top1_prob > ?) FROM neurons WHERE kind = ? "
                   "GROUP BY layer ORDER BY layer");
  q.bind(1, threshold).bind(2, static_cast<int64_t>(kind));
  while (q.step()) out.push_back({q.int64(0), q.int64(1), q.real(2), q.int64(3)});
  return out;
}

std::vector<int32_t> Atlas::layer_top1(VectorKind kind, int64_t layer) const {
  std::vector<int32_t> out;
  sql::Statement q(db_, "SELECT top1_token FROM neurons WHERE kind = ? AND layer = ? ORDER BY neuron");
  q.bind(1, static_cast<int64_t>(kind)).bind(2, layer);
  while (q.step()) out.push_back(static_cast<int32_t>(q.int64(0)));
  return out;
}

std::vector<std::vector<int32_t>> Atlas::layer_topk(VectorKind kind, int64_t layer) const {
  std::vector<std::vector<int32_t>> out;
  sql::Statement q(db_,
                   "SELECT neuron, token FROM neuron_tokens WHERE kind = ? AND layer = ? ORDER BY neuron, rank");
  q.bind(1, static_cast<int64_t>(kind)).bind(2, layer);
  while (q.step()) {
    const int64_t n = q.int64(0);
    if (n >= static_cast<int64_t>(out.size())) out.resize(static_cast<size_t>(n + 1));
    out[static_cast<size_t>(n)].push_back(static_cast<int32_t>(q.int64(1)));
  }
  return out;
}

}  // namespace neuronlens

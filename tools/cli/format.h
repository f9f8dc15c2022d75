// Small formatting helpers shared by the CLI commands.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>

namespace neuronlens::cli {

inline std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return buf;
}

inline std::string human_seconds(double s) {
  char buf[32];
  if (s < 60) std::snprintf(buf, sizeof buf, "%.1f s", s);
  else if (s < 3600) std::snprintf(buf, sizeof buf, "%.1f min", s / 60);
  else std::snprintf(buf, sizeof buf, "%.1f h", s / 3600);
  return buf;
}

}  // namespace neuronlens::cli

namespace neuronlens::cli {

// A token's display text in quotes, with newlines, tabs and other control
// characters made visible so a table stays one line per row.
inline std::string quote_token(const std::string& text) {
  std::string out = "'";
  for (unsigned char c : text) {
    if (c == '\n') out += "\\n";
    else if (c == '\t') out += "\\t";
    else if (c == '\r') out += "\\r";
    else if (c < 0x20 || c == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02X", c);
      out += buf;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out + "'";
}

}  // namespace neuronlens::cli

#include <fstream>

#include "neuronlens/error.h"

namespace neuronlens::cli {

// Writes `text` to `path` (an --plot or --csv file); a path that cannot be
// written is the caller's mistake: bad_input naming the option.
inline void write_text_file(const std::string& option, const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary);
  if (out) out << text;
  if (!out) throw bad_input(option + ": cannot write '" + path + "'");
}

}  // namespace neuronlens::cli

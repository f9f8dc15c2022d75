// Arguments that may name a model or an atlas.
#pragma once

#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>

namespace neuronlens::cli {

// True when `path` is an SQLite file (an atlas), by its 16-byte header.
inline bool is_sqlite_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char header[16] = {0};
  in.read(header, sizeof header);
  return in.gcount() == 16 && std::memcmp(header, "SQLite format 3\0", 16) == 0;
}

}  // namespace neuronlens::cli

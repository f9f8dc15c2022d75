// A whole file read into memory, for the small text inputs (JSON, jobs
// files, tokenizer.json, a text to tokenize) that are parsed from a string.
#pragma once

#include <fstream>
#include <sstream>
#include <string>

#include "neuronlens/error.h"

namespace neuronlens {

// The bytes of the file at `path`. Throws Error of `kind`, "PATH: cannot
// open" or "PATH: read failed", when it cannot be read.
inline std::string read_whole_file(const std::string& path, ErrorKind kind) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(kind, path + ": cannot open");
  std::ostringstream contents;
  contents << in.rdbuf();
  if (!in.good() && !in.eof()) throw Error(kind, path + ": read failed");
  return contents.str();
}

}  // namespace neuronlens

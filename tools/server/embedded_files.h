// The raw table of web UI files that cmake/embed_web_assets.cmake generates
// at build time from web/. Read it through embedded_assets.h.
#pragma once

#include <cstddef>
#include <string_view>

namespace neuronlens::server {

struct EmbeddedFile {
  std::string_view path;   // "/index.html", "/assets/app.js"
  std::string_view bytes;  // the file's contents
};

extern const EmbeddedFile kEmbeddedFiles[];  // kEmbeddedFileCount entries, then an empty one
extern const size_t kEmbeddedFileCount;

}  // namespace neuronlens::server

// The web UI's files, embedded in the binary at build time (every file under
// web/), looked up by URL path. Nothing is read from disk at run time, so no
// request path can reach a file outside this table.
#pragma once

#include <string_view>

namespace neuronlens::server {

struct EmbeddedAsset {
  std::string_view path;          // "/index.html", "/assets/app.js"
  std::string_view content_type;  // from the extension, e.g. "text/javascript; charset=utf-8"
  std::string_view body;
};

// The asset at exactly `path`, or nullptr. No normalisation: "/assets/../x"
// is simply not in the table.
const EmbeddedAsset* find_embedded_asset(std::string_view path);

// The Content-Type for a file name, by its extension.
std::string_view content_type_for(std::string_view path);

}  // namespace neuronlens::server

// Looking up the embedded web UI files (embedded_assets.h).
#include "embedded_assets.h"

#include <algorithm>
#include <vector>

#include "embedded_files.h"

namespace neuronlens::server {
namespace {

struct TypeByExtension {
  std::string_view extension;
  std::string_view content_type;
};

constexpr TypeByExtension kContentTypes[] = {
    {".html", "text/html; charset=utf-8"},   {".js", "text/javascript; charset=utf-8"},
    {".mjs", "text/javascript; charset=utf-8"}, {".css", "text/css; charset=utf-8"},
    {".json", "application/json"},           {".svg", "image/svg+xml"},
    {".png", "image/png"},                   {".ico", "image/x-icon"},
    {".woff2", "font/woff2"},                {".txt", "text/plain; charset=utf-8"},
};

// Built once, sorted by path for binary search.
const std::vector<EmbeddedAsset>& asset_table() {
  static const std::vector<EmbeddedAsset> table = [] {
    std::vector<EmbeddedAsset> assets;
    for (size_t i = 0; i < kEmbeddedFileCount; ++i) {
      const EmbeddedFile& f = kEmbeddedFiles[i];
      assets.push_back({f.path, content_type_for(f.path), f.bytes});
    }
    std::sort(assets.begin(), assets.end(), [](const auto& a, const auto& b) { return a.path < b.path; });
    return assets;
  }();
  return table;
}

}  // namespace

std::string_view content_type_for(std::string_view path) {
  for (const auto& [extension, type] : kContentTypes) {
    if (path.ends_with(extension)) return type;
  }
  return "application/octet-stream";
}

const EmbeddedAsset* find_embedded_asset(std::string_view path) {
  const auto& table = asset_table();
  const auto it = std::lower_bound(table.begin(), table.end(), path,
                                   [](const EmbeddedAsset& a, std::string_view p) { return a.path < p; });
  return it != table.end() && it->path == path ? &*it : nullptr;
}

}  // namespace neuronlens::server

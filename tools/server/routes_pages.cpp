// The web UI: every page path serves index.html (the UI routes on the path
// itself), and /assets/... serves the embedded files. Nothing is read from
// disk, so no path, however encoded, reaches another file.
#include "embedded_assets.h"
#include "request_error.h"
#include "routes.h"

namespace neuronlens::server {
namespace {

void send_asset(httplib::Response& response, std::string_view path) {
  const EmbeddedAsset* asset = find_embedded_asset(path);
  if (asset == nullptr) not_found("no such file in the web UI: " + std::string(path));
  response.set_content(std::string(asset->body), std::string(asset->content_type));
  // The assets change only with the binary; let the browser revalidate.
  response.set_header("Cache-Control", "no-cache");
}

}  // namespace

void add_page_routes(Router& router) {
  for (const char* page : {"/", "/search", "/layer/{layer}/{kind}", "/neuron/{layer}/{kind}/{index}", "/compare",
                           "/playground", "/heads/{layer}/{circuit}", "/head/{layer}/{circuit}/{head}"}) {
    router.add("GET", page, [](const auto&, auto& response, const auto&) { send_asset(response, "/index.html"); });
  }
  router.add_get_fallback(
      [](std::string_view path) { return path.starts_with("/assets/") && find_embedded_asset(path) != nullptr; },
      [](const auto& request, auto& response, const auto&) { send_asset(response, request.path); });
}

}  // namespace neuronlens::server

// The server's request handling without sockets: the route table, every
// handler's parameter parsing (query strings and JSON bodies) and the
// handlers themselves, on the atlas and model named by
// $NEURONLENS_FUZZ_ATLAS and $NEURONLENS_FUZZ_MODEL (scripts/fuzz.sh maps the
// tiny fixture model for them). The input is
//   METHOD SP PATH[?name=value&...] LF BODY
// Every request must get a response with a status, and any 5xx is a finding
// (a bad request is the client's fault: 4xx).
#include <httplib.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "server/router.h"
#include "server/routes.h"
#include "server/server_context.h"

namespace {

using namespace neuronlens::server;

struct RouteTable {
  ServerContext context;
  Router router;
  explicit RouteTable(const ServeOptions& options) : context(options), router(context.paths()) {}
};

RouteTable& server() {
  static RouteTable* s = [] {
    const char* atlas = std::getenv("NEURONLENS_FUZZ_ATLAS");
    const char* model = std::getenv("NEURONLENS_FUZZ_MODEL");
    if (atlas == nullptr || model == nullptr) {
      std::fprintf(stderr,
                   "fuzz_http_routes: set NEURONLENS_FUZZ_ATLAS and NEURONLENS_FUZZ_MODEL (scripts/fuzz.sh does)\n");
      std::abort();
    }
    ServeOptions options;
    options.atlas_path = atlas;
    options.model_path = model;
    auto* made = new RouteTable(options);
    add_atlas_routes(made->router, made->context);
    add_search_routes(made->router, made->context);
    add_model_routes(made->router, made->context);
    add_compare_routes(made->router, made->context);
    add_page_routes(made->router);
    return made;
  }();
  return *s;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  RouteTable& s = server();
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const size_t line_end = input.find('\n');
  const std::string_view line = input.substr(0, line_end);
  const size_t space = line.find(' ');
  if (space == std::string_view::npos) return 0;
  httplib::Request request;
  request.method = std::string(line.substr(0, space));
  std::string_view target = line.substr(space + 1);
  // The limits httplib enforces before a request reaches the router.
  if (target.size() > CPPHTTPLIB_REQUEST_URI_MAX_LENGTH) return 0;
  const size_t question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) {
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      const size_t amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      const size_t eq = pair.find('=');
      request.params.emplace(std::string(pair.substr(0, eq)),
                             eq == std::string_view::npos ? std::string() : std::string(pair.substr(eq + 1)));
      if (amp == std::string_view::npos) break;
      query.remove_prefix(amp + 1);
    }
  }
  if (line_end != std::string_view::npos) request.body = std::string(input.substr(line_end + 1));
  if (request.body.size() > kMaxBodyBytes) return 0;
  if (!request.body.empty()) request.set_header("Content-Type", "application/json");
  httplib::Response response;
  s.router.dispatch(request, response);
  // -1: the handler left the status to httplib, which then answers 200.
  if (response.status != -1 && (response.status < 200 || response.status >= 500)) {
    std::fprintf(stderr, "%s %s answered %d: %s\n", request.method.c_str(), request.path.c_str(), response.status,
                 response.body.substr(0, 300).c_str());
    std::abort();
  }
  return 0;
}

// The server's route table. httplib hands every request to Router::dispatch,
// which matches the path segment by segment (no regular expressions on
// request text), so a known path with the wrong method is a 405 with an Allow
// header, an unknown path a 404, and a handler's exception a JSON error
// (status and message from error_reply.h).
#pragma once

#include <httplib.h>

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "error_reply.h"

namespace neuronlens::server {

// The "{name}" segments of the matched pattern, in order.
using PathParams = std::vector<std::string>;
using RouteHandler = std::function<void(const httplib::Request&, httplib::Response&, const PathParams&)>;

class Router {
 public:
  // `paths`: scrubbed from every error message; must outlive the router.
  explicit Router(const PathScrubber& paths) : paths_(paths) {}

  // `pattern`: "/api/layers/{layer}/{kind}"; a "{...}" segment matches any
  // one non-empty segment. `method`: "GET" (also answers HEAD) or "POST".
  void add(const std::string& method, const std::string& pattern, RouteHandler handler);
  // For paths no pattern names (the embedded assets): `accepts(path)` says
  // whether this GET-only handler knows the path.
  void add_get_fallback(std::function<bool(std::string_view path)> accepts, RouteHandler handler);

  // Answers the request: the handler's response, or a JSON error. Never throws.
  void dispatch(const httplib::Request& request, httplib::Response& response) const;

 private:
  struct Route {
    std::string method;
    std::vector<std::string> segments;
    RouteHandler handler;
  };
  const PathScrubber& paths_;
  std::vector<Route> routes_;
  std::function<bool(std::string_view)> fallback_accepts_;
  RouteHandler fallback_;
};

// Sets `response` to the JSON `{"error": message}` with `status`.
void send_error(httplib::Response& response, int status, const std::string& message);

}  // namespace neuronlens::server

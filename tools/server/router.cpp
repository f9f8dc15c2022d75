// Route matching and the one place where a handler's failure becomes an HTTP
// error (router.h).
#include "router.h"

#include <exception>

#include "json_reply.h"
#include "request_error.h"

namespace neuronlens::server {
namespace {

std::vector<std::string> split_path(std::string_view path) {
  std::vector<std::string> segments;
  if (path.empty() || path.front() != '/') return segments;
  size_t start = 1;
  while (true) {
    const size_t slash = path.find('/', start);
    segments.emplace_back(path.substr(start, slash == std::string_view::npos ? std::string_view::npos : slash - start));
    if (slash == std::string_view::npos) break;
    start = slash + 1;
  }
  return segments;
}

bool is_parameter(const std::string& segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

bool matches(const std::vector<std::string>& pattern, const std::vector<std::string>& path, PathParams& params) {
  if (pattern.size() != path.size()) return false;
  params.clear();
  for (size_t i = 0; i < pattern.size(); ++i) {
    if (is_parameter(pattern[i])) {
      if (path[i].empty()) return false;
      params.push_back(path[i]);
    } else if (pattern[i] != path[i]) {
      return false;
    }
  }
  return true;
}

}  // namespace

void send_error(httplib::Response& response, int status, const std::string& message) {
  response.status = status;
  response.set_content(json_text({{"error", message}}), "application/json");
}

void Router::add(const std::string& method, const std::string& pattern, RouteHandler handler) {
  routes_.push_back({method, split_path(pattern), std::move(handler)});
}

void Router::add_get_fallback(std::function<bool(std::string_view)> accepts, RouteHandler handler) {
  fallback_accepts_ = std::move(accepts);
  fallback_ = std::move(handler);
}

void Router::dispatch(const httplib::Request& request, httplib::Response& response) const {
  const std::string method = request.method == "HEAD" ? "GET" : request.method;
  try {
    const std::vector<std::string> path = split_path(request.path);
    std::string allowed;
    PathParams params;
    for (const Route& route : routes_) {
      if (!matches(route.segments, path, params)) continue;
      if (route.method == method) {
        route.handler(request, response, params);
        return;
      }
      allowed += (allowed.empty() ? "" : ", ") + route.method;
    }
    if (allowed.empty() && fallback_accepts_ && fallback_accepts_(request.path)) {
      if (method == "GET") {
        fallback_(request, response, {});
        return;
      }
      allowed = "GET";
    }
    if (!allowed.empty()) {
      if (allowed.find("GET") != std::string::npos) allowed += ", HEAD";
      response.set_header("Allow", allowed);
      throw RequestError(405, request.method + " is not allowed on " + request.path + " (allowed: " + allowed + ")");
    }
    throw RequestError(404, "no such page or endpoint: " + request.path);
  } catch (...) {
    const ErrorReply reply = error_reply(std::current_exception(), paths_);
    if (reply.status == 429) response.set_header("Retry-After", "1");
    send_error(response, reply.status, reply.message);
  }
}

}  // namespace neuronlens::server

// The HTTP server around the routes (api_server.h).
#include "api_server.h"

#include <httplib.h>
#include <sys/socket.h>

#include "http_server.h"
#include "json_reply.h"
#include "neuronlens/error.h"
#include "router.h"
#include "routes.h"

namespace neuronlens::server {

struct ApiServer::Impl {
  ServerContext context;
  Router router;
  HttpServer http;
  Impl(const ServeOptions& options, const ConnectionLimits& limits)
      : context(options), router(context.paths()), http(limits) {}
};

namespace {

ConnectionLimits connection_limits(int threads) {
  ConnectionLimits limits;
  limits.workers = threads > 0 ? static_cast<size_t>(threads) : CPPHTTPLIB_THREAD_POOL_COUNT;
  // A request body is read whole before the handler runs (at most
  // kMaxBodyBytes), so one announced by Content-Length is waited for before
  // it takes a worker.
  limits.max_buffered_body = kMaxBodyBytes;
  return limits;
}

}  // namespace

ApiServer::ApiServer(const ServeOptions& options, int threads)
    : impl_(std::make_unique<Impl>(options, connection_limits(threads))) {
  Router& router = impl_->router;
  add_atlas_routes(router, impl_->context);
  add_head_routes(router, impl_->context);
  add_search_routes(router, impl_->context);
  add_model_routes(router, impl_->context);
  add_circuit_routes(router, impl_->context);
  add_compare_routes(router, impl_->context);
  add_page_routes(router);

  // Slow, idle and pipelining clients are dealt with by HttpServer
  // (http_server.h): keep-alive, deadlines and the worker count are its
  // ConnectionLimits.
  HttpServer& http = impl_->http;
  http.set_payload_max_length(kMaxBodyBytes);
  // Every method comes to the router, which tells 404 from 405. The pattern
  // only ever sees a path of at most CPPHTTPLIB_REQUEST_URI_MAX_LENGTH bytes.
  const auto dispatch = [&router](const httplib::Request& request, httplib::Response& response) {
    router.dispatch(request, response);
  };
  // Bodies are read here, not by httplib: it caps a body sent with a
  // Content-Length (413) but reads a chunked one whole, however large.
  const auto dispatch_with_body = [&router](const httplib::Request& request, httplib::Response& response,
                                            const httplib::ContentReader& read) {
    std::string body;
    bool too_large = false;
    const bool complete = read([&](const char* data, size_t size) {
      too_large = too_large || body.size() + size > kMaxBodyBytes;
      if (!too_large) body.append(data, size);
      return !too_large;
    });
    if (too_large || response.status == 413 || !complete) {
      const bool over = too_large || response.status == 413;
      send_error(response, over ? 413 : 400,
                 over ? "the request body is over " + std::to_string(kMaxBodyBytes / 1024) + " KiB"
                      : std::string("the request body could not be read"));
      // The rest of the body is still on the connection: do not reuse it.
      response.set_header("Connection", "close");
      HttpServer::close_connection_after_response();
      return;
    }
    httplib::Request with_body = request;
    with_body.body = std::move(body);
    router.dispatch(with_body, response);
  };
  http.Get(".*", dispatch);
  http.Post(".*", dispatch);
  http.Post(".*", dispatch_with_body);
  http.Put(".*", dispatch);
  http.Put(".*", dispatch_with_body);
  http.Patch(".*", dispatch);
  http.Patch(".*", dispatch_with_body);
  http.Delete(".*", dispatch);
  http.Delete(".*", dispatch_with_body);
  http.Options(".*", dispatch);
  // Errors httplib answers itself (413 body too large, 400 unparsable
  // request, 414 URI too long) get the API's JSON shape too. After one of
  // them what is left on the connection cannot be trusted to be the next
  // request (the unread body, the rest of a garbled head): it closes.
  http.set_error_handler(httplib::Server::HandlerWithResponse([](const httplib::Request&, httplib::Response& response) {
    if (!response.body.empty()) return httplib::Server::HandlerResponse::Unhandled;
    HttpServer::close_connection_after_response();
    std::string message = "HTTP " + std::to_string(response.status);
    if (response.status == 413) message = "the request body is over " + std::to_string(kMaxBodyBytes / 1024) + " KiB";
    if (response.status == 414) message = "the request URI is too long";
    if (response.status == 400) message = "malformed HTTP request";
    if (response.status == 404) message = "no such page or endpoint";
    response.set_content(json_text({{"error", message}}), "application/json");
    return httplib::Server::HandlerResponse::Handled;
  }));
  http.set_exception_handler([](const httplib::Request&, httplib::Response& response, std::exception_ptr) {
    response.status = 500;
    response.set_content(json_text({{"error", "internal error"}}), "application/json");
  });
}

ApiServer::~ApiServer() { stop(); }

int ApiServer::bind(const std::string& host, int port) {
  HttpServer& http = impl_->http;
  const int bound = port == 0 ? http.bind_to_any_port(host) : (http.bind_to_port(host, port) ? port : -1);
  if (bound <= 0) throw bad_input("cannot listen on " + host + ":" + std::to_string(port) + " (in use, or not an address here)");
  http.widen_listen_backlog(SOMAXCONN);
  return bound;
}

void ApiServer::run() { impl_->http.listen_after_bind(); }

void ApiServer::stop() {
  impl_->context.stopping() = true;
  impl_->http.stop();
}

bool ApiServer::running() const { return impl_->http.is_running(); }

ServerContext& ApiServer::context() { return impl_->context; }
Router& ApiServer::router() { return impl_->router; }

}  // namespace neuronlens::server

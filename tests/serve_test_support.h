// What the `serve` tests share: atlases mapped from the tiny fixture models,
// an ApiServer running in-process on a free loopback port, and raw HTTP
// exchanges for requests a well-behaved client would never send.
#pragma once

#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "neuronlens/neuron_map.h"
#include "server/api_server.h"
#include "scratch_dir.h"
#include "test_paths.h"

namespace neuronlens::testing {

// Maps the chosen kinds and layers (empty: all) of a fixture model into an
// atlas file; returns its path.
inline std::string map_fixture_atlas(const ScratchDir& dir, const std::string& fixture, const std::string& name,
                                     std::vector<VectorKind> kinds = {VectorKind::Up, VectorKind::Gate,
                                                                      VectorKind::Down},
                                     std::vector<int64_t> layers = {}) {
  const Model model = Model::load(fixture_path(fixture));
  MapOptions options;
  options.kinds = std::move(kinds);
  options.layers = std::move(layers);
  const std::string path = dir.file(name);
  Atlas atlas = Atlas::create_or_resume(path, atlas_settings_for(model, options.settings), model.vocab());
  run_neuron_map(model, options, atlas);
  return path;
}

// The API server on its own thread, on 127.0.0.1 and a free port.
class TestServer {
 public:
  // `before_run`: a last change to the server before it serves (routes of
  // the test's own).
  explicit TestServer(const server::ServeOptions& options, int threads = 4,
                      const std::function<void(server::ApiServer&)>& before_run = {})
      : api_(std::make_unique<server::ApiServer>(options, threads)) {
    if (before_run) before_run(*api_);
    port_ = api_->bind("127.0.0.1", 0);
    thread_ = std::thread([this] { api_->run(); });
    while (!api_->running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ~TestServer() {
    api_->stop();
    thread_.join();
  }
  TestServer(const TestServer&) = delete;
  TestServer& operator=(const TestServer&) = delete;

  int port() const { return port_; }
  server::ApiServer& api() { return *api_; }
  httplib::Client client() const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(60, 0);
    return c;
  }

  // GET or POST and parse the JSON body (null when it is not JSON).
  struct Reply {
    int status = 0;
    nlohmann::json body;
    std::string text;
    std::string header(const std::string& name) const { return headers.count(name) ? headers.find(name)->second : ""; }
    httplib::Headers headers;
  };
  Reply get(const std::string& path) const { return reply(client().Get(path.c_str())); }
  Reply post(const std::string& path, const std::string& body) const {
    return reply(client().Post(path.c_str(), body, "application/json"));
  }
  Reply post(const std::string& path, const nlohmann::json& body) const { return post(path, body.dump()); }

 private:
  static Reply reply(const httplib::Result& result) {
    Reply r;
    if (!result) return r;
    r.status = result->status;
    r.text = result->body;
    r.headers = result->headers;
    r.body = nlohmann::json::parse(result->body, nullptr, false);
    if (r.body.is_discarded()) r.body = nullptr;
    return r;
  }
  std::unique_ptr<server::ApiServer> api_;
  int port_ = 0;
  std::thread thread_;
};

// Sends `request` byte for byte on a new connection and returns everything
// the server answers until it closes (or `wait_seconds` pass with nothing
// new); status is the number on the status line, 0 when there is none. (The
// write side stays open: cpp-httplib does not answer a half-closed socket.)
struct RawReply {
  int status = 0;
  std::string text;
};
inline RawReply raw_http(int port, const std::string& request, int wait_seconds = 5) {
  RawReply out;
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return out;
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  timeval timeout{wait_seconds, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
  if (::connect(fd, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0) {
    size_t sent = 0;
    while (sent < request.size()) {
      const ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) break;
      sent += static_cast<size_t>(n);
    }

    char buffer[4096];
    ssize_t n;
    while ((n = ::recv(fd, buffer, sizeof buffer, 0)) > 0) out.text.append(buffer, static_cast<size_t>(n));
  }
  ::close(fd);
  if (out.text.rfind("HTTP/1.1 ", 0) == 0 && out.text.size() >= 12) out.status = std::atoi(out.text.substr(9, 3).c_str());
  return out;
}

// A POST whose streamed reply is read a piece at a time on a connection the
// test closes when it likes (a client that leaves mid-stream).
class RawStream {
 public:
  RawStream(int port, const std::string& path, const std::string& body) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval timeout{10, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) != 0) return;
    const std::string request = "POST " + path + " HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n" +
                                "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
    ::send(fd_, request.data(), request.size(), MSG_NOSIGNAL);
  }
  ~RawStream() { close(); }
  RawStream(const RawStream&) = delete;
  RawStream& operator=(const RawStream&) = delete;

  // Reads until `text` has arrived (true) or the reply ends or stalls (false).
  bool wait_for(const std::string& text) {
    char buffer[4096];
    while (received_.find(text) == std::string::npos) {
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) return false;
      received_.append(buffer, static_cast<size_t>(n));
    }
    return true;
  }
  void close() {
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  std::string received_;
};

// A GET of `path` exactly as written (no client-side normalisation), on a
// connection that closes after it.
inline RawReply raw_get(int port, const std::string& path) {
  return raw_http(port, "GET " + path + " HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n");
}

}  // namespace neuronlens::testing

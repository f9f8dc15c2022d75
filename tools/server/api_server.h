// `neuronlens serve`: the JSON API of docs/api.md and the embedded web UI over
// HTTP (cpp-httplib), loopback unless told otherwise. Used by the CLI, the
// tests (in-process, on a free port) and the load benchmark.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "server_context.h"

namespace neuronlens::server {

class Router;

class ApiServer {
 public:
  // Loads the atlas (and model, compare atlas) and sets up the routes.
  // Throws Error. `threads`: worker threads (0: cpp-httplib's default).
  ApiServer(const ServeOptions& options, int threads = 0);
  ~ApiServer();
  ApiServer(const ApiServer&) = delete;
  ApiServer& operator=(const ApiServer&) = delete;

  // Binds `host`:`port` (port 0: a free one) and returns the port. Throws
  // Error when the address cannot be bound.
  int bind(const std::string& host, int port);
  // Serves until stop(); call after bind(), from the thread that will block.
  void run();
  // Stops serving (from any thread; safe to call more than once). Running
  // generations end at their next token.
  void stop();
  // True from when run() starts listening until it returns.
  bool running() const;

  ServerContext& context();
  // The route table, for an embedder's own routes (and the tests'); add them
  // before run(): the table is read without a lock while serving.
  Router& router();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neuronlens::server

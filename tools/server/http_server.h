// cpp-httplib's Server with its own connection handling, so that slow and
// idle clients cannot starve the others.
//
// Why: cpp-httplib 0.11 (Debian's) gives every connection a worker thread
// from the moment it is accepted, and reads the request a line at a time with
// a read timeout that restarts with every byte that arrives. Eight clients
// that each send one header line a second hold all eight workers for as long
// as they like, and every other client waits. Neither a bigger pool (it only
// moves the number) nor SO_RCVTIMEO (also per read) bounds that; and 0.11
// makes a fresh read buffer per request, so the second of two pipelined
// requests is lost.
//
// What this does instead: accepted connections, and connections between two
// requests, wait in one poll() loop (the "waiting room"), which costs no
// thread per connection. A connection reaches a worker only when its request
// head, and a body announced by Content-Length of at most `max_buffered_body`
// bytes, have arrived in full. Each request has a deadline: a connection that
// sends nothing for `idle_seconds` is closed, and one whose request is not
// complete `request_seconds` after the server began waiting for it is
// answered 408 and closed; a head over `max_head_bytes` is answered 431. The
// workers then parse the buffered bytes with httplib's own request handling
// (process_request), and bytes past the end of one request stay buffered, so
// pipelined requests are answered in order on the same connection.
#pragma once

#include <httplib.h>

#include <cstddef>
#include <memory>

namespace neuronlens::server {

struct ConnectionLimits {
  size_t workers = 8;              // requests handled at once
  int idle_seconds = 2;            // no byte of the next request: closed
  int request_seconds = 5;         // the whole request (head and buffered body), from when waiting began
  size_t max_head_bytes = 64 * 1024;
  size_t max_buffered_body = 64 * 1024;
  size_t max_waiting = 1000;       // connections in the waiting room; more are closed at once
  size_t max_requests_per_connection = 100;
};

class HttpServer : public httplib::Server {
 public:
  explicit HttpServer(const ConnectionLimits& limits);
  ~HttpServer() override;
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // After bind: lets `backlog` connections queue for accept(). httplib
  // listens with a backlog of 5, and when that queue is full Linux leaves a
  // client it has told "connected" unaccepted for seconds of SYN-ACK
  // retries, which a burst of connections (a browser opens six) overflows.
  void widen_listen_backlog(int backlog);

  // From a handler: the connection closes once this response is sent (the
  // rest of a rejected body is still on it, say).
  static void close_connection_after_response();

  class Connections;  // the waiting room and the workers, one set per listen()

 private:
  // Called by httplib's accept loop for each new connection (on that thread:
  // our task queue runs it inline); hands the socket to the waiting room.
  bool process_and_close_socket(socket_t sock) override;

  friend class Connections;
  ConnectionLimits limits_;
  Connections* connections_ = nullptr;  // owned by httplib's task queue while listening
};

}  // namespace neuronlens::server

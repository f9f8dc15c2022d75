// The waiting room and the workers of HttpServer (http_server.h).
#include "http_server.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace neuronlens::server {
namespace {

using Clock = std::chrono::steady_clock;

thread_local bool close_after_this_response = false;

void close_socket(int sock) {
  ::shutdown(sock, SHUT_RDWR);
  ::close(sock);
}

// A last word to a client the waiting room gives up on; small enough for the
// socket's buffer, so it never blocks. The socket then only drains (see
// Connection::draining).
void send_final_reply(int sock, int status, const char* reason, const std::string& message) {
  const std::string body = "{\"error\":\"" + message + "\"}";
  const std::string reply = "HTTP/1.1 " + std::to_string(status) + " " + reason +
                            "\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
                            std::to_string(body.size()) + "\r\n\r\n" + body;
  ::send(sock, reply.data(), reply.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
  ::shutdown(sock, SHUT_WR);
}

int milliseconds_until(Clock::time_point when, Clock::time_point now) {
  if (when <= now) return 0;
  if (when - now > std::chrono::hours(1)) return 3600 * 1000;
  return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(when - now).count());
}

bool equal_ignoring_case(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

// The value of header `name` in a request head, if present.
std::optional<std::string_view> header_value(std::string_view head, std::string_view name) {
  size_t line = head.find("\r\n");
  while (line != std::string_view::npos && line + 2 < head.size()) {
    const size_t start = line + 2;
    const size_t end = head.find("\r\n", start);
    const std::string_view text = head.substr(start, end == std::string_view::npos ? std::string_view::npos : end - start);
    const size_t colon = text.find(':');
    if (colon != std::string_view::npos && equal_ignoring_case(text.substr(0, colon), name)) {
      std::string_view value = text.substr(colon + 1);
      while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
      while (!value.empty() && (value.back() == ' ' || value.back() == '\t')) value.remove_suffix(1);
      return value;
    }
    line = end;
  }
  return std::nullopt;
}

enum class Arrival { Incomplete, Complete, HeadTooLarge };

// Whether `received` starts with a whole request a worker can answer without
// waiting on the client: the head, and the body when Content-Length
// announces one the server would accept. Otherwise (chunked, Expect:
// 100-continue, a body over the limit, a malformed length) the head is enough
// and httplib deals with the rest.
Arrival request_arrival(std::string_view received, const ConnectionLimits& limits) {
  size_t head_end = received.find("\r\n\r\n");
  if (head_end == std::string_view::npos) {
    return received.size() > limits.max_head_bytes ? Arrival::HeadTooLarge : Arrival::Incomplete;
  }
  head_end += 4;
  if (head_end > limits.max_head_bytes) return Arrival::HeadTooLarge;
  const std::string_view head = received.substr(0, head_end);
  const std::optional<std::string_view> length_text = header_value(head, "Content-Length");
  if (!length_text || header_value(head, "Expect") || length_text->empty() || length_text->size() > 9 ||
      !std::all_of(length_text->begin(), length_text->end(), [](char c) { return c >= '0' && c <= '9'; })) {
    return Arrival::Complete;
  }
  const size_t length = std::stoul(std::string(*length_text));
  if (length > limits.max_buffered_body) return Arrival::Complete;
  return received.size() >= head_end + length ? Arrival::Complete : Arrival::Incomplete;
}

// A connection between requests.
struct Connection {
  int sock = -1;
  std::string received;          // bytes of the next request(s) read so far
  Clock::time_point idle_until;  // closed if nothing has arrived by then
  Clock::time_point complete_by; // answered 408 if the request is still incomplete then
  size_t requests_left = 0;
  // Answered 408 or 431 and shut for writing: what the client still sends is
  // read and dropped until it closes or `complete_by` (a second more), since
  // closing a socket with unread bytes resets it, and the client might never
  // read the answer.
  bool draining = false;
};

// httplib's view of a connection on a worker: reads come from the bytes the
// waiting room buffered, then from the socket (a chunked body) until the
// request's deadline; what is left over (a pipelined request) stays for the
// next one.
class BufferedSocketStream final : public httplib::Stream {
 public:
  BufferedSocketStream(int sock, std::string buffered, time_t read_timeout_sec, time_t write_timeout_sec)
      : sock_(sock), buffer_(std::move(buffered)), read_timeout_(read_timeout_sec), write_timeout_(write_timeout_sec) {}

  void set_deadline(Clock::time_point deadline) { deadline_ = deadline; }
  std::string_view unread() const { return std::string_view(buffer_).substr(offset_); }
  std::string take_unread() {
    std::string rest = buffer_.substr(offset_);
    buffer_.clear();
    offset_ = 0;
    return rest;
  }

  bool is_readable() const override { return offset_ < buffer_.size() || wait(POLLIN, read_timeout_, true); }
  bool is_writable() const override { return wait(POLLOUT, write_timeout_, false) && peer_still_there(); }

  ssize_t read(char* ptr, size_t size) override {
    if (offset_ == buffer_.size()) {
      if (!wait(POLLIN, read_timeout_, true)) return -1;
      char chunk[16 * 1024];
      const ssize_t n = ::recv(sock_, chunk, sizeof chunk, 0);
      if (n <= 0) return n;
      buffer_.assign(chunk, static_cast<size_t>(n));
      offset_ = 0;
    }
    const size_t n = std::min(size, buffer_.size() - offset_);
    std::memcpy(ptr, buffer_.data() + offset_, n);
    offset_ += n;
    return static_cast<ssize_t>(n);
  }

  ssize_t write(const char* ptr, size_t size) override {
    if (!is_writable()) return -1;
    return ::send(sock_, ptr, size, MSG_NOSIGNAL);
  }

  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(::getpeername, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(::getsockname, ip, port); }
  socket_t socket() const override { return sock_; }

 private:
  // Waits for `events` up to `timeout_sec`, and for reads no later than the
  // request's deadline.
  bool wait(short events, time_t timeout_sec, bool bounded_by_deadline) const {
    const Clock::time_point now = Clock::now();
    int timeout = static_cast<int>(timeout_sec * 1000);
    if (bounded_by_deadline) timeout = std::min(timeout, milliseconds_until(deadline_, now));
    if (timeout <= 0 && bounded_by_deadline && deadline_ <= now) return false;
    pollfd fd{sock_, events, 0};
    int n;
    do {
      n = ::poll(&fd, 1, timeout);
    } while (n < 0 && errno == EINTR);
    return n > 0;
  }
  // As httplib does: a readable socket that peeks 0 bytes has been closed
  // (a client that left mid-stream).
  bool peer_still_there() const {
    pollfd fd{sock_, POLLIN, 0};
    if (::poll(&fd, 1, 0) <= 0) return true;
    char byte;
    return ::recv(sock_, &byte, 1, MSG_PEEK | MSG_DONTWAIT) > 0;
  }
  template <typename Get>
  void address(Get get, std::string& ip, int& port) const {
    sockaddr_storage storage{};
    socklen_t size = sizeof storage;
    ip.clear();
    port = 0;
    if (get(sock_, reinterpret_cast<sockaddr*>(&storage), &size) != 0) return;
    char text[INET6_ADDRSTRLEN] = {0};
    if (storage.ss_family == AF_INET) {
      const auto* a = reinterpret_cast<const sockaddr_in*>(&storage);
      ::inet_ntop(AF_INET, &a->sin_addr, text, sizeof text);
      port = ntohs(a->sin_port);
    } else if (storage.ss_family == AF_INET6) {
      const auto* a = reinterpret_cast<const sockaddr_in6*>(&storage);
      ::inet_ntop(AF_INET6, &a->sin6_addr, text, sizeof text);
      port = ntohs(a->sin6_port);
    }
    ip = text;
  }

  int sock_;
  std::string buffer_;
  size_t offset_ = 0;
  time_t read_timeout_;
  time_t write_timeout_;
  Clock::time_point deadline_ = Clock::time_point::max();
};

}  // namespace

// httplib's task queue for the accept loop, and the owner of the waiting
// room's thread and the workers for as long as the server listens.
class HttpServer::Connections final : public httplib::TaskQueue {
 public:
  explicit Connections(HttpServer& server) : server_(server), limits_(server.limits_) {
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    room_ = std::thread([this] { waiting_room(); });
    for (size_t i = 0; i < std::max<size_t>(limits_.workers, 1); ++i) workers_.emplace_back([this] { work(); });
  }
  ~Connections() override {
    server_.connections_ = nullptr;
    if (wake_ >= 0) ::close(wake_);
  }

  // The accept loop's job is process_and_close_socket, which only admits the
  // connection: run it at once, on the accepting thread.
  void enqueue(std::function<void()> fn) override { fn(); }

  void shutdown() override {
    {
      const std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    wake();
    ready_cv_.notify_all();
    room_.join();
    for (std::thread& w : workers_) w.join();
    for (Connection& c : arriving_) close_socket(c.sock);
    for (Connection& c : ready_) close_socket(c.sock);
    arriving_.clear();
    ready_.clear();
  }

  void admit(int sock) {
    Connection c;
    c.sock = sock;
    c.requests_left = limits_.max_requests_per_connection;
    if (!park(std::move(c))) close_socket(sock);
  }

 private:
  // Into the waiting room, with fresh deadlines; false when it is full or
  // the server is stopping.
  bool park(Connection c) {
    const Clock::time_point now = Clock::now();
    c.idle_until = now + std::chrono::seconds(limits_.idle_seconds);
    c.complete_by = now + std::chrono::seconds(limits_.request_seconds);
    {
      const std::lock_guard lock(mutex_);
      if (stopping_ || waiting_ + arriving_.size() >= limits_.max_waiting) return false;
      arriving_.push_back(std::move(c));
    }
    wake();
    return true;
  }

  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] const ssize_t n = ::write(wake_, &one, sizeof one);
  }

  // The one thread that watches every waiting connection: reads what
  // arrives, hands complete requests to the workers, and closes the idle and
  // the too slow.
  void waiting_room() {
    std::vector<Connection> waiting;
    std::vector<pollfd> fds;
    while (true) {
      {
        const std::lock_guard lock(mutex_);
        if (stopping_) break;
        for (Connection& c : arriving_) waiting.push_back(std::move(c));
        arriving_.clear();
        waiting_ = waiting.size();
      }
      Clock::time_point now = Clock::now();
      int timeout = 1000;
      fds.assign(1, pollfd{wake_, POLLIN, 0});
      for (const Connection& c : waiting) {
        fds.push_back(pollfd{c.sock, POLLIN, 0});
        const bool idle = c.received.empty() && !c.draining;
        timeout = std::min(timeout, milliseconds_until(idle ? c.idle_until : c.complete_by, now));
      }
      if (::poll(fds.data(), fds.size(), timeout) < 0 && errno != EINTR) break;
      if (fds[0].revents != 0) {
        uint64_t count;
        [[maybe_unused]] const ssize_t n = ::read(wake_, &count, sizeof count);
      }
      now = Clock::now();
      std::vector<Connection> still_waiting;
      for (size_t i = 0; i < waiting.size(); ++i) {
        Connection& c = waiting[i];
        if (fds[i + 1].revents != 0) {
          char chunk[16 * 1024];
          const ssize_t n = ::recv(c.sock, chunk, sizeof chunk, MSG_DONTWAIT);
          if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) {
            close_socket(c.sock);  // the client left
            continue;
          }
          if (n > 0 && !c.draining) c.received.append(chunk, static_cast<size_t>(n));
        }
        if (c.draining) {
          if (now >= c.complete_by) {
            close_socket(c.sock);
          } else {
            still_waiting.push_back(std::move(c));
          }
          continue;
        }
        const Arrival arrival = request_arrival(c.received, limits_);
        if (arrival == Arrival::Complete) {
          {
            const std::lock_guard lock(mutex_);
            ready_.push_back(std::move(c));
          }
          ready_cv_.notify_one();
          continue;
        }
        if (arrival == Arrival::HeadTooLarge) {
          send_final_reply(c.sock, 431, "Request Header Fields Too Large",
                           "the request head is over " + std::to_string(limits_.max_head_bytes / 1024) + " KiB");
        } else if (c.received.empty() && now >= c.idle_until) {
          close_socket(c.sock);  // an idle keep-alive connection: no answer owed
          continue;
        } else if (now >= c.complete_by) {
          send_final_reply(c.sock, 408, "Request Timeout",
                           "the request did not arrive within " + std::to_string(limits_.request_seconds) + " s");
        } else {
          still_waiting.push_back(std::move(c));
          continue;
        }
        c.draining = true;
        c.received.clear();
        c.complete_by = now + std::chrono::seconds(1);
        still_waiting.push_back(std::move(c));
      }
      waiting = std::move(still_waiting);
    }
    for (Connection& c : waiting) close_socket(c.sock);
  }

  void work() {
    while (true) {
      Connection c;
      {
        std::unique_lock lock(mutex_);
        ready_cv_.wait(lock, [this] { return stopping_ || !ready_.empty(); });
        if (stopping_) return;
        c = std::move(ready_.front());
        ready_.pop_front();
      }
      serve(std::move(c));
    }
  }

  bool stopping() {
    const std::lock_guard lock(mutex_);
    return stopping_;
  }

  // Answers the connection's buffered request, and the ones pipelined after
  // it, then parks the connection again (or closes it).
  void serve(Connection c) {
    BufferedSocketStream stream(c.sock, std::move(c.received), server_.read_timeout_sec_, server_.write_timeout_sec_);
    while (true) {
      // A body still to come (chunked) has its own deadline.
      stream.set_deadline(Clock::now() + std::chrono::seconds(limits_.request_seconds));
      const bool last = c.requests_left <= 1 || stopping();
      bool client_closes = false;
      close_after_this_response = false;
      const bool answered = server_.process_request(stream, last, client_closes, nullptr);
      --c.requests_left;
      if (!answered || last || client_closes || close_after_this_response || stopping()) {
        close_socket(c.sock);
        return;
      }
      if (request_arrival(stream.unread(), limits_) != Arrival::Complete) break;
    }
    c.received = stream.take_unread();
    const int sock = c.sock;
    if (!park(std::move(c))) close_socket(sock);
  }

  HttpServer& server_;
  const ConnectionLimits limits_;
  int wake_ = -1;
  std::mutex mutex_;
  bool stopping_ = false;
  size_t waiting_ = 0;                 // connections the waiting room holds
  std::vector<Connection> arriving_;   // new or re-parked, not yet seen by the waiting room
  std::deque<Connection> ready_;       // complete requests for the workers
  std::condition_variable ready_cv_;
  std::thread room_;
  std::vector<std::thread> workers_;
};

HttpServer::HttpServer(const ConnectionLimits& limits) : limits_(limits) {
  // Not used by httplib's loop any more, but written in its Keep-Alive header.
  set_keep_alive_timeout(limits.idle_seconds);
  set_keep_alive_max_count(limits.max_requests_per_connection);
  new_task_queue = [this] {
    connections_ = new Connections(*this);
    return connections_;
  };
}

HttpServer::~HttpServer() = default;

void HttpServer::widen_listen_backlog(int backlog) {
  if (svr_sock_ != INVALID_SOCKET) ::listen(svr_sock_, backlog);
}

void HttpServer::close_connection_after_response() { close_after_this_response = true; }

bool HttpServer::process_and_close_socket(socket_t sock) {
  if (connections_ == nullptr) {
    close_socket(sock);
    return false;
  }
  connections_->admit(sock);
  return true;
}

}  // namespace neuronlens::server

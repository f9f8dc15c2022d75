// The `serve` API against hostile conditions rather than hostile parameters:
// each kind of failure answers its own status (400 bad input, 422 bad file,
// 500 internal) with no server-side path in the message; slow, idle and
// pipelining clients neither starve the others nor hold a connection past
// the request deadline; oversized heads are refused.
#include <gtest/gtest.h>
#include <poll.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <new>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "neuronlens/neuron_map.h"
#include "serve_test_support.h"
#include "server/error_reply.h"
#include "server/request_error.h"
#include "server/router.h"

namespace neuronlens {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;
using testing::TestServer;

server::ErrorReply reply_to(std::exception_ptr failure, const server::PathScrubber& paths = {}) {
  return server::error_reply(failure, paths);
}

TEST(ServeErrorReply, StatusFollowsWhoseFaultItIs) {
  EXPECT_EQ(reply_to(std::make_exception_ptr(server::RequestError(429, "busy"))).status, 429);
  EXPECT_EQ(reply_to(std::make_exception_ptr(server::RequestError(404, "no such page"))).status, 404);
  EXPECT_EQ(reply_to(std::make_exception_ptr(bad_input("layer: out of range"))).status, 400);
  EXPECT_EQ(reply_to(std::make_exception_ptr(bad_file("x.db: corrupt atlas"))).status, 422);
  EXPECT_EQ(reply_to(std::make_exception_ptr(internal_error("broken invariant"))).status, 500);
  EXPECT_EQ(reply_to(std::make_exception_ptr(std::bad_alloc())).status, 500);
  EXPECT_EQ(reply_to(std::make_exception_ptr(std::runtime_error("vector::at"))).status, 500);
  EXPECT_EQ(reply_to(std::make_exception_ptr(42)).status, 500);
  EXPECT_EQ(reply_to(std::make_exception_ptr(bad_file("x.db: corrupt atlas"))).message, "x.db: corrupt atlas");
  EXPECT_EQ(reply_to(std::make_exception_ptr(std::bad_alloc())).message, "out of memory");
}

TEST(ServeErrorReply, TheServersPathsAreCutToBaseNames) {
  server::PathScrubber paths;
  paths.add_file("/srv/atlases/smol.db");
  paths.add_file("/srv/models/smol.gguf");
  paths.add_file("relative.db");
  const std::string cwd = std::filesystem::current_path().string();
  const auto reply = [&](const std::string& message) {
    return reply_to(std::make_exception_ptr(bad_file(message)), paths).message;
  };
  EXPECT_EQ(reply("/srv/atlases/smol.db: corrupt atlas"), "smol.db: corrupt atlas");
  EXPECT_EQ(reply("model file /srv/models/smol.gguf not found (also /srv/models/other.gguf)"),
            "model file smol.gguf not found (also other.gguf)");
  EXPECT_EQ(reply("cannot read /srv/atlases"), "cannot read atlases");
  EXPECT_EQ(reply(cwd + "/relative.db: locked"), "relative.db: locked");
  EXPECT_EQ(reply("relative.db: locked"), "relative.db: locked");
  EXPECT_EQ(reply("/srv/other/file: elsewhere"), "/srv/other/file: elsewhere");
  EXPECT_EQ(reply(server::RequestError(400, "q: required").what()), "q: required");
}

// Maps tiny_llama from a copy at `model_path` into `atlas_path`.
void map_atlas(const std::string& model_path, const std::string& atlas_path) {
  std::filesystem::create_directories(std::filesystem::path(model_path).parent_path());
  std::filesystem::create_directories(std::filesystem::path(atlas_path).parent_path());
  std::filesystem::copy_file(testing::fixture_path("tiny_llama.gguf"), model_path,
                             std::filesystem::copy_options::overwrite_existing);
  const Model model = Model::load(model_path);
  MapOptions options;
  Atlas atlas = Atlas::create_or_resume(atlas_path, atlas_settings_for(model, options.settings), model.vocab());
  run_neuron_map(model, options, atlas);
}

void run_sql(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(path.c_str(), &db), SQLITE_OK);
  char* message = nullptr;
  EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &message), SQLITE_OK) << (message ? message : "");
  sqlite3_free(message);
  sqlite3_close(db);
}

// Servers on atlases and weights in folders of their own, so that a test can
// look for those folders in what the server says.
class ServeHardening : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::ScratchDir();
    const std::string models = dir_->file("private-models"), atlases = dir_->file("private-atlases");
    map_atlas(models + "/tiny_llama.gguf", atlases + "/full.db");
    std::filesystem::copy_file(atlases + "/full.db", atlases + "/corrupt.db");
    map_atlas(models + "/gone.gguf", atlases + "/orphan.db");
    std::filesystem::remove(models + "/gone.gguf");
    server::ServeOptions options;
    options.atlas_path = atlases + "/full.db";
    server_ = new TestServer(options);
    options.atlas_path = atlases + "/corrupt.db";
    corrupt_ = new TestServer(options);
    options.atlas_path = atlases + "/orphan.db";
    orphan_ = new TestServer(options);
    // After the server has opened and checked it: a neuron's row goes.
    run_sql(atlases + "/corrupt.db", "DELETE FROM neurons WHERE neuron = 5");
  }
  static void TearDownTestSuite() {
    delete orphan_;
    delete corrupt_;
    delete server_;
    delete dir_;
  }
  void TearDown() override { EXPECT_EQ(server_->get("/api/info").status, 200); }

  // The folders a reply must not name, in every spelling the server might
  // have met them.
  static void expect_no_private_path(const std::string& text, const std::string& what) {
    for (const std::string name : {"private-models", "private-atlases"}) {
      const std::filesystem::path folder = dir_->file(name);
      for (const std::string& form : {folder.string(), std::filesystem::weakly_canonical(folder).string()}) {
        EXPECT_EQ(text.find(form), std::string::npos) << what << " -> " << text;
      }
      EXPECT_EQ(text.find(dir_->file("")), std::string::npos) << what << " -> " << text;
    }
  }
  static testing::ScratchDir* dir_;
  static TestServer* server_;
  static TestServer* corrupt_;
  static TestServer* orphan_;
};
testing::ScratchDir* ServeHardening::dir_ = nullptr;
TestServer* ServeHardening::server_ = nullptr;
TestServer* ServeHardening::corrupt_ = nullptr;
TestServer* ServeHardening::orphan_ = nullptr;

TEST_F(ServeHardening, EachKindOfFailureHasItsStatusAndNoPath) {
  // Bad input: 400.
  const auto bad_input = server_->get("/api/layers/9/up");
  EXPECT_EQ(bad_input.status, 400) << bad_input.text;
  // A bad file: the atlas lost a row after the server opened it, and the
  // exact search reads the layer's rows.
  const auto bad_file = corrupt_->get("/api/search?q=dog");
  EXPECT_EQ(bad_file.status, 422) << bad_file.text;
  ASSERT_TRUE(bad_file.body.is_object()) << bad_file.text;
  const std::string message = bad_file.body.value("error", "");
  EXPECT_NE(message.find("corrupt.db"), std::string::npos) << message;
  EXPECT_NE(message.find("corrupt atlas"), std::string::npos) << message;
  // Weights the atlas records are gone: the 409 says which, by name.
  const auto no_model = orphan_->post("/api/generate", json{{"prompt", "hi"}});
  EXPECT_EQ(no_model.status, 409) << no_model.text;
  EXPECT_NE(no_model.text.find("gone.gguf"), std::string::npos) << no_model.text;
  for (const auto* r : {&bad_input, &bad_file, &no_model}) expect_no_private_path(r->text, "reply");
  for (TestServer* s : {server_, corrupt_, orphan_}) {
    for (const std::string path : {"/api/info", "/api/nope", "/api/layers/0/up?limit=0", "/api/neurons/0/up/99999",
                                   "/api/search?q=dog&layers=9", "/api/compare/summary", "/api/tokens/5/neurons",
                                   "/api/search?q=zzqqxxjj", "/api/overview?threshold=2"}) {
      expect_no_private_path(s->get(path).text, path);
    }
    for (const std::string path : {"/api/generate", "/api/probe", "/api/activations"}) {
      expect_no_private_path(s->post(path, std::string("{\"prompt\": 5}")).text, path);
    }
  }
  // The corrupt atlas still serves what does not touch the missing row.
  EXPECT_EQ(corrupt_->get("/api/info").status, 200);
}

// No request to the real routes causes an internal error (that would be a bug
// the fuzzer reports), so the test adds routes that fail the way a bug
// would, and checks the whole way to the socket: a 500 with a JSON message,
// the server's paths cut from it, and the server serving on.
TEST_F(ServeHardening, AnInternalFailureIsA500AndTheServerServesOn) {
  const std::string private_atlas = dir_->file("private-atlases") + "/full.db";
  server::ServeOptions options;
  options.atlas_path = private_atlas;
  TestServer failing(options, 2, [&](server::ApiServer& api) {
    api.router().add("GET", "/api/test/invariant", [&](const auto&, auto&, const auto&) {
      throw internal_error("row count of " + private_atlas + " changed while reading");
    });
    api.router().add("GET", "/api/test/std", [](const auto&, auto&, const auto&) {
      throw std::out_of_range("vector::_M_range_check: __n (which is 7) >= this->size() (which is 7)");
    });
    api.router().add("GET", "/api/test/memory", [](const auto&, auto&, const auto&) { throw std::bad_alloc(); });
    api.router().add("GET", "/api/test/bad-file", [&](const auto&, auto&, const auto&) {
      throw bad_file(private_atlas + ": corrupt atlas");
    });
  });
  const auto invariant = failing.get("/api/test/invariant");
  EXPECT_EQ(invariant.status, 500) << invariant.text;
  ASSERT_TRUE(invariant.body.is_object()) << invariant.text;
  EXPECT_EQ(invariant.body.value("error", ""), "row count of full.db changed while reading");
  const auto std_failure = failing.get("/api/test/std");
  EXPECT_EQ(std_failure.status, 500) << std_failure.text;
  EXPECT_NE(std_failure.body.value("error", "").find("internal error: vector::_M_range_check"), std::string::npos)
      << std_failure.text;
  const auto memory = failing.get("/api/test/memory");
  EXPECT_EQ(memory.status, 500) << memory.text;
  EXPECT_EQ(memory.body.value("error", ""), "out of memory");
  const auto file = failing.get("/api/test/bad-file");
  EXPECT_EQ(file.status, 422) << file.text;
  EXPECT_EQ(file.body.value("error", ""), "full.db: corrupt atlas");
  for (const auto* r : {&invariant, &std_failure, &memory, &file}) {
    EXPECT_EQ(r->header("Content-Type"), "application/json");
    expect_no_private_path(r->text, "reply");
  }
  EXPECT_EQ(failing.get("/api/info").status, 200);
}

// A socket to the server that the test writes to as slowly as it likes.
class SlowClient {
 public:
  explicit SlowClient(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<const sockaddr*>(&address), sizeof address) == 0;
  }
  ~SlowClient() { ::close(fd_); }
  SlowClient(const SlowClient&) = delete;
  SlowClient& operator=(const SlowClient&) = delete;

  bool connected() const { return connected_; }
  void send(const std::string& text) { ::send(fd_, text.data(), text.size(), MSG_NOSIGNAL | MSG_DONTWAIT); }
  // Reads what has arrived; true once the server has closed the connection.
  bool closed_by_server() {
    char buffer[4096];
    while (true) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 0) <= 0) return false;
      const ssize_t n = ::recv(fd_, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n <= 0) return true;
      received_.append(buffer, static_cast<size_t>(n));
    }
  }
  const std::string& received() const { return received_; }

 private:
  int fd_ = -1;
  bool connected_ = false;
  std::string received_;
};

// 40 clients that send their request a line (or a body byte) a second and
// 20 that connect and send nothing, on a server of 4 workers: a normal
// request is still answered at once, and each slow client is answered 408
// and let go when its request deadline (5 s) passes.
TEST_F(ServeHardening, SlowAndIdleClientsDoNotDelayOthers) {
  const int port = server_->port();
  const auto started = Clock::now();
  std::vector<std::unique_ptr<SlowClient>> slow, idle;
  for (int i = 0; i < 40; ++i) {
    slow.push_back(std::make_unique<SlowClient>(port));
    ASSERT_TRUE(slow.back()->connected());
    // Half dribble their head, half their body.
    slow.back()->send(i % 2 == 0 ? "GET /api/info HTTP/1.1\r\n"
                                 : "POST /api/probe HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
  }
  for (int i = 0; i < 20; ++i) {
    idle.push_back(std::make_unique<SlowClient>(port));
    ASSERT_TRUE(idle.back()->connected());
  }
  std::atomic<bool> done{false};
  std::thread dribbler([&] {
    while (!done) {
      std::this_thread::sleep_for(std::chrono::seconds(1));
      for (size_t i = 0; i < slow.size(); ++i) slow[i]->send(i % 2 == 0 ? "X-Slow: 1\r\n" : " ");
    }
  });
  double slowest = 0;
  for (int i = 0; i < 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    const auto before = Clock::now();
    const auto r = server_->get("/api/info");
    const double seconds = std::chrono::duration<double>(Clock::now() - before).count();
    EXPECT_EQ(r.status, 200);
    slowest = std::max(slowest, seconds);
  }
  EXPECT_LT(slowest, 2.0) << "a normal request waited behind slow clients";
  // The deadline is 5 s from the connection; allow for a loaded machine.
  size_t let_go = 0;
  while (Clock::now() - started < std::chrono::seconds(10) && let_go < slow.size()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    let_go = 0;
    for (auto& c : slow) let_go += c->closed_by_server() ? 1 : 0;
  }
  const double waited = std::chrono::duration<double>(Clock::now() - started).count();
  done = true;
  dribbler.join();
  EXPECT_EQ(let_go, slow.size()) << "after " << waited << " s";
  EXPECT_GT(waited, 4.5) << "slow clients were cut before their deadline";
  for (auto& c : slow) EXPECT_EQ(c->received().rfind("HTTP/1.1 408", 0), 0u) << c->received();
  // Idle connections were closed (after 2 s), without a word.
  for (auto& c : idle) {
    EXPECT_TRUE(c->closed_by_server());
    EXPECT_EQ(c->received(), "");
  }
}

TEST_F(ServeHardening, PipelinedRequestsAreAnsweredInOrder) {
  const std::string body = json{{"text", "the dog"}, {"layer", 0}, {"index", 3}}.dump();
  const testing::RawReply r = testing::raw_http(
      server_->port(),
      "GET /api/info HTTP/1.1\r\nHost: x\r\n\r\n"
      "POST /api/activations HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: " +
          std::to_string(body.size()) + "\r\n\r\n" + body +
          "GET /api/layers/0/up?limit=1 HTTP/1.1\r\nHost: x\r\n\r\n"
          "GET /api/nope HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  std::vector<size_t> at;
  for (size_t p = r.text.find("HTTP/1.1 "); p != std::string::npos; p = r.text.find("HTTP/1.1 ", p + 1)) at.push_back(p);
  ASSERT_EQ(at.size(), 4u) << r.text;
  EXPECT_EQ(r.text.substr(at[0], 12), "HTTP/1.1 200");
  EXPECT_EQ(r.text.substr(at[1], 12), "HTTP/1.1 200");
  EXPECT_EQ(r.text.substr(at[2], 12), "HTTP/1.1 200");
  EXPECT_EQ(r.text.substr(at[3], 12), "HTTP/1.1 404");
  EXPECT_NE(r.text.find("\"model\"", at[0]), std::string::npos);
  EXPECT_LT(r.text.find("\"act\"", at[1]), at[2]);
  EXPECT_LT(r.text.find("\"items\"", at[2]), at[3]);
}

TEST_F(ServeHardening, OversizedHeadsAreRefused) {
  std::string head = "GET /api/info HTTP/1.1\r\nHost: x\r\n";
  while (head.size() < 70 * 1024) head += "X-Filler: " + std::string(1000, 'f') + "\r\n";
  const testing::RawReply many = testing::raw_http(server_->port(), head + "\r\n");
  EXPECT_EQ(many.status, 431) << many.text.substr(0, 200);
  // One line over httplib's 8 KiB: its own 400, and the connection closes.
  const testing::RawReply one = testing::raw_http(
      server_->port(), "GET /api/info HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(9000, 'h') + "\r\n\r\n");
  EXPECT_EQ(one.status, 400) << one.text.substr(0, 200);
  // Without an end, the head is refused as soon as it is too long.
  const testing::RawReply endless = testing::raw_http(server_->port(), "GET /api/info HTTP/1.1\r\nX: " +
                                                                           std::string(80 * 1024, 'e'));
  EXPECT_EQ(endless.status, 431) << endless.text.substr(0, 200);
}

}  // namespace
}  // namespace neuronlens

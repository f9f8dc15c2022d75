// The `serve` API under bad input and load: every parameter checked (400),
// unmapped layers (404), wrong methods (405), missing model or compare atlas
// (409), oversized bodies (413), a busy model (429), paths that try to leave
// the embedded assets, malformed HTTP, concurrent clients — and after each of
// them the server still answers. Also the `serve` command itself: it prints
// its URL, serves, and stops cleanly on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "neuronlens/text_model.h"
#include "serve_test_support.h"
#include "server/embedded_assets.h"
#include "test_process.h"

extern char** environ;

namespace neuronlens {
namespace {

using nlohmann::json;
using testing::TestServer;

// Servers on the full map of tiny_llama: with weights, without, and on a
// partial atlas (up vectors of layer 0 only).
class ServeBadInput : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::ScratchDir();
    const std::string full = testing::map_fixture_atlas(*dir_, "tiny_llama.gguf", "full.db");
    const std::string partial = testing::map_fixture_atlas(*dir_, "tiny_llama.gguf", "partial.db", {VectorKind::Up}, {0});
    server::ServeOptions options;
    options.atlas_path = full;
    server_ = new TestServer(options);
    options.no_model = true;
    atlas_only_ = new TestServer(options);
    options.atlas_path = partial;
    options.no_model = false;
    partial_ = new TestServer(options);
  }
  static void TearDownTestSuite() {
    delete partial_;
    delete atlas_only_;
    delete server_;
    delete dir_;
  }
  // The server still answers after whatever the test did to it.
  void TearDown() override {
    for (TestServer* s : {server_, atlas_only_, partial_}) EXPECT_EQ(s->get("/api/info").status, 200);
  }
  static testing::ScratchDir* dir_;
  static TestServer* server_;
  static TestServer* atlas_only_;
  static TestServer* partial_;
};
testing::ScratchDir* ServeBadInput::dir_ = nullptr;
TestServer* ServeBadInput::server_ = nullptr;
TestServer* ServeBadInput::atlas_only_ = nullptr;
TestServer* ServeBadInput::partial_ = nullptr;

// An error reply: the status, and a JSON body {"error": "..."} whose message
// contains `says`.
void expect_error(const TestServer::Reply& r, int status, const std::string& says, const std::string& what) {
  EXPECT_EQ(r.status, status) << what << " -> " << r.text;
  ASSERT_TRUE(r.body.is_object()) << what << " -> " << r.text;
  ASSERT_TRUE(r.body.contains("error") && r.body.at("error").is_string()) << what << " -> " << r.text;
  EXPECT_NE(r.body.at("error").get<std::string>().find(says), std::string::npos)
      << what << " -> " << r.body.at("error") << " lacks '" << says << "'";
  EXPECT_EQ(r.header("Content-Type"), "application/json") << what;
}

TEST_F(ServeBadInput, QueryAndPathParametersOutOfRangeAre400) {
  const std::string huge = "99999999999999999999999";
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"/api/layers/2/up", "layer"},
      {"/api/layers/-1/up", "layer"},
      {"/api/layers/x/up", "layer"},
      {"/api/layers/" + huge + "/up", "out of range"},
      {"/api/layers/0x1/up", "layer"},
      {"/api/layers/1.0/up", "layer"},
      {"/api/layers/%201/up", "layer"},
      {"/api/layers/0/side", "kind"},
      {"/api/layers/0/UP", "kind"},
      {"/api/layers/0/up?limit=0", "limit"},
      {"/api/layers/0/up?limit=201", "limit"},
      {"/api/layers/0/up?limit=", "limit"},
      {"/api/layers/0/up?offset=-1", "offset"},
      {"/api/layers/0/up?offset=" + huge, "offset"},
      {"/api/layers/0/up?sort=logsumexp", "sort"},
      {"/api/layers/0/up?sort=entropy;DROP%20TABLE%20neurons", "sort"},
      {"/api/layers/0/up?order=up", "order"},
      {"/api/layers/0/up?show_top=101", "show_top"},
      {"/api/neurons/0/up/96", "index"},
      {"/api/neurons/0/up/-5", "index"},
      {"/api/neurons/0/up/" + huge, "index"},
      {"/api/neurons/2/gate/0", "layer"},
      {"/api/neurons/0/middle/0", "kind"},
      {"/api/overview?threshold=0", "threshold"},
      {"/api/overview?threshold=-0.5", "threshold"},
      {"/api/overview?threshold=1.5", "threshold"},
      {"/api/overview?threshold=nan", "threshold"},
      {"/api/overview?threshold=inf", "threshold"},
      {"/api/overview?threshold=1e999", "threshold"},
      {"/api/overview?threshold=half", "threshold"},
      {"/api/search", "q"},
      {"/api/search?q=", "q"},
      {"/api/search?q=" + std::string(101, 'a'), "q"},
      {"/api/search?q=dog&by=rank", "by"},
      {"/api/search?q=dog&kinds=left", "kinds: unknown neuron kind 'left'"},
      {"/api/search?q=dog&layers=5-2", "layers: layer 5 is out of range"},
      {"/api/search?q=dog&layers=1-0", "layers: range '1-0' runs backwards"},
      {"/api/search?q=dog&layers=7", "layers: layer 7 is out of range (the model has layers 0 to 1)"},
      {"/api/search?q=dog&layers=-1", "layers: layer '' is not a number"},
      {"/api/search?q=dog&limit=500", "limit"},
      {"/api/search?q=dog&offset=990&limit=20", "offset + limit"},
      {"/api/search?q=dog&exact=maybe", "exact"},
      {"/api/search?q=dog&variants=2", "variants"},
      {"/api/search?q=zzqqxxjj", "not a single token"},
      {"/api/tokens", "q"},
      {"/api/tokens?q=" + std::string(101, 'a'), "q"},
      {"/api/tokens?q=do&limit=0", "limit"},
      {"/api/tokens/540/neurons", "id"},
      {"/api/tokens/-1/neurons", "id"},
      {"/api/tokens/dog/neurons", "id"},
      {"/api/tokens/5/neurons?limit=1000", "limit"},
  };
  for (const auto& [path, says] : cases) {
    expect_error(server_->get(path), 400, says, path);
    expect_error(atlas_only_->get(path), 400, says, path);
  }
}

TEST_F(ServeBadInput, UnmappedLayersAndKindsAre404) {
  for (const auto& [path, says] : std::vector<std::pair<std::string, std::string>>{
           {"/api/layers/1/up", "not mapped"},
           {"/api/layers/0/gate", "not mapped"},
           {"/api/neurons/0/down/3", "not mapped"},
           {"/api/neurons/1/up/3", "not mapped"},
           {"/api/search?q=dog&kinds=gate", "none of the kinds"},
           {"/api/search?q=dog&kinds=gate,down", "none of the kinds"},
           {"/api/search?q=dog&layers=1", "not mapped"},
       }) {
    expect_error(partial_->get(path), 404, says, path);
  }
  // What is mapped is served; the other kinds of a neuron are null.
  const auto r = partial_->get("/api/neurons/0/up/3");
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_TRUE(r.body.at("other_kinds").at("gate").is_null());
  EXPECT_TRUE(r.body.at("other_kinds").at("up").is_object());
  EXPECT_EQ(partial_->get("/api/search?q=dog").status, 200);
  // Kinds the atlas lacks are skipped, as the UI asks for all three.
  const auto some = partial_->get("/api/search?q=dog&kinds=up,gate,down");
  ASSERT_EQ(some.status, 200) << some.text;
  EXPECT_EQ(some.body.at("total"), 96);
}

TEST_F(ServeBadInput, BodiesAreValidatedBeforeAnythingRuns) {
  const std::string big_prompt(4097, 'a');
  json seventeen = json::array();
  for (int i = 0; i < 17; ++i) seventeen.push_back({{"layer", 0}, {"index", i}, {"value", 1.0}});
  json nine_and_nine = {{"clamps", json::array()}, {"ablate", json::array()}};
  for (int i = 0; i < 9; ++i) {
    nine_and_nine["clamps"].push_back({{"layer", 0}, {"index", i}, {"value", 1.0}});
    nine_and_nine["ablate"].push_back({{"layer", 1}, {"index", i}});
  }
  nine_and_nine["prompt"] = "hi";
  // 30000 levels: deep, yet under the 64 KiB body limit.
  const std::string deep_prompt = "{\"prompt\": " + std::string(30000, '[') + std::string(30000, ']') + "}";
  const std::vector<std::tuple<std::string, std::string, std::string>> cases = {
      // Not JSON, not an object, empty.
      {"/api/generate", "", "JSON object"},
      {"/api/generate", "{\"prompt\": \"hi\"", "not valid JSON"},
      {"/api/generate", "{\"prompt\": NaN}", "not valid JSON"},
      {"/api/generate", "{\"prompt\": \"hi\", \"temperature\": Infinity}", "not valid JSON"},
      {"/api/generate", "[1, 2]", "JSON object"},
      {"/api/generate", "\"hi\"", "JSON object"},
      {"/api/generate", "{\"prompt\": \"\\ud800\"}", "not valid JSON"},
      {"/api/generate", deep_prompt, "the body nests deeper than 256 levels of arrays and objects"},
      // Wrong types and ranges.
      {"/api/generate", R"({"prompt": 5})", "prompt"},
      {"/api/generate", R"({"prompt": ""})", "prompt"},
      {"/api/generate", R"({"chat": true})", "prompt: required"},
      {"/api/generate", R"({"prompt": "hi", "chat": "yes"})", "chat"},
      {"/api/generate", R"({"prompt": "hi", "max_tokens": 0})", "max_tokens"},
      {"/api/generate", R"({"prompt": "hi", "max_tokens": 257})", "max_tokens"},
      {"/api/generate", R"({"prompt": "hi", "max_tokens": 1e9})", "max_tokens"},
      {"/api/generate", R"({"prompt": "hi", "max_tokens": 12.5})", "max_tokens"},
      {"/api/generate", R"({"prompt": "hi", "max_tokens": "12"})", "max_tokens"},
      {"/api/generate", R"({"prompt": "hi", "max_tokens": 99999999999999999999999})", "max_tokens"},
      {"/api/generate", R"({"prompt": "hi", "seed": -1})", "seed"},
      {"/api/generate", R"({"prompt": "hi", "temperature": -0.5})", "temperature"},
      {"/api/generate", R"({"prompt": "hi", "temperature": 1e400})", ""},
      {"/api/generate", R"({"prompt": "hi", "top_p": 0})", "top_p"},
      {"/api/generate", R"({"prompt": "hi", "top_p": 1.5})", "top_p"},
      {"/api/generate", R"({"prompt": "hi", "top_k": -3})", "top_k"},
      {"/api/generate", R"({"prompt": "hi", "baseline": 1})", "baseline"},
      {"/api/generate", R"({"prompt": "hi", "clamps": {"layer": 0}})", "clamps"},
      {"/api/generate", R"({"prompt": "hi", "clamps": [5]})", "clamps[0]"},
      {"/api/generate", R"({"prompt": "hi", "clamps": [{"layer": 0, "index": 1}]})", "clamps[0].value: required"},
      {"/api/generate", R"({"prompt": "hi", "clamps": [{"layer": 2, "index": 1, "value": 1}]})", "clamps[0].layer"},
      {"/api/generate", R"({"prompt": "hi", "clamps": [{"layer": 0, "index": 96, "value": 1}]})", "clamps[0].index"},
      {"/api/generate", R"({"prompt": "hi", "clamps": [{"layer": 0, "index": -1, "value": 1}]})", "clamps[0].index"},
      {"/api/generate", R"({"prompt": "hi", "clamps": [{"layer": 0, "index": 1, "value": 1e5}]})", "clamps[0].value"},
      {"/api/generate", R"({"prompt": "hi", "clamps": [{"layer": 0, "index": 1, "value": "5"}]})", "clamps[0].value"},
      {"/api/generate", R"({"prompt": "hi", "clamps": [{"layer": "0", "index": 1, "value": 5}]})", "clamps[0].layer"},
      {"/api/generate", R"({"prompt": "hi", "ablate": [{"layer": 0}]})", "ablate[0].index: required"},
      {"/api/generate", json{{"prompt", "hi"}, {"clamps", seventeen}}.dump(), "clamps"},
      {"/api/generate", R"({"prompt": "hi", "heads": [3]})", "heads[0]"},
      {"/api/generate", R"({"prompt": "hi", "heads": [{"layer": 0, "head": 99, "factor": 0}]})", "heads[0].head"},
      {"/api/generate", R"({"prompt": "hi", "heads": [{"layer": 2, "head": 0}]})", "heads[0].layer"},
      {"/api/generate", R"({"prompt": "hi", "heads": [{"layer": 0, "head": 0, "factor": 1e5}]})", "heads[0].factor"},
      {"/api/probe", R"({"prompt": "hi", "tokens": [" dog"], "heads": [{"layer": 0}]})", "heads[0].head: required"},
      {"/api/generate", nine_and_nine.dump(), "clamps + ablate"},
      {"/api/generate", json{{"prompt", big_prompt}}.dump(), "prompt"},
      // Probe and activations.
      {"/api/probe", R"({"prompt": "hi", "tokens": " dog"})", "tokens"},
      {"/api/probe", R"({"prompt": "hi", "tokens": [5]})", "tokens[0]"},
      {"/api/probe", R"({"prompt": "hi", "tokens": [" dog food and more"]})", "tokens[0]: ' dog food and more' is "},
      {"/api/probe", R"({"prompt": "hi", "tokens": [" dog food and more"]})", "not one"},
      {"/api/probe", R"({"prompt": "hi", "tokens": [""]})", "tokens[0]"},
      {"/api/probe", R"({"prompt": "hi", "top": 0})", "top"},
      {"/api/probe", R"({"prompt": "hi", "top": 101})", "top"},
      {"/api/probe", R"({"tokens": [" dog"]})", "prompt"},
      {"/api/attribute", R"({"prompt": "the dog"})", "token"},
      {"/api/attribute", R"({"prompt": "the dog", "token": " dog food and more"})", "token: ' dog food and more' is "},
      {"/api/attribute", R"({"prompt": "the dog", "token": " dog", "vs": " dog"})", "vs: the same token"},
      {"/api/attribute", R"({"prompt": "the dog", "token": " dog", "heads": [{"layer": 0, "head": 99}]})", "heads[0].head"},
      {"/api/patch", R"({"clean": "the dog", "corrupt": "the big dog", "token": " dog"})", "the same token count"},
      {"/api/patch", R"({"clean": "the dog", "corrupt": "the cat", "token": " dog food and more"})", "token: "},
      {"/api/patch", R"({"clean": "the dog", "corrupt": "the cat", "token": " dog", "layers": [2]})", "layers[0]"},
      {"/api/patch", R"({"clean": "the dog", "corrupt": "the cat", "token": " dog", "layers": ["1"]})", "layers[0]"},
      {"/api/activations", R"({"text": "hi", "layer": 0})", "index: required"},
      {"/api/activations", R"({"text": "hi", "layer": 2, "index": 0})", "layer"},
      {"/api/activations", R"({"text": "hi", "layer": 0, "index": 96})", "index"},
      {"/api/activations", R"({"text": "hi", "layer": 0.5, "index": 0})", "layer"},
      {"/api/activations", R"({"text": "hi", "layer": true, "index": 0})", "layer"},
      {"/api/activations", R"({"text": ["hi"], "layer": 0, "index": 0})", "text"},
      {"/api/activations", json{{"text", big_prompt}, {"layer", 0}, {"index", 0}}.dump(), "text"},
  };
  for (const auto& [path, body, says] : cases) expect_error(server_->post(path, body), 400, says, path + " " + body.substr(0, 80));
  // A prompt longer than the model's context (tiny_llama: 256 tokens) in
  // fewer than 4096 bytes.
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += " dog";
  expect_error(server_->post("/api/generate", json{{"prompt", long_prompt}}), 400, "context", "long prompt");
}

TEST_F(ServeBadInput, UnknownRoutesAre404AndWrongMethods405) {
  for (const std::string path : {"/nope", "/api", "/api/", "/api/info/", "/api/infos", "/api/neurons/0/up",
                                 "/api/neurons/0/up/1/2", "/assets/", "/assets/nope.js", "/index.htm", "/layer/1",
                                 "/API/info", "//api/info"}) {
    expect_error(server_->get(path), 404, "", path);
  }
  struct MethodCase {
    std::string method, path, allow;
  };
  for (const MethodCase& c : {MethodCase{"POST", "/api/info", "GET, HEAD"}, MethodCase{"DELETE", "/api/search", "GET, HEAD"},
                              MethodCase{"PUT", "/api/neurons/0/up/1", "GET, HEAD"},
                              MethodCase{"GET", "/api/generate", "POST"}, MethodCase{"PATCH", "/api/probe", "POST"},
                              MethodCase{"POST", "/", "GET, HEAD"}, MethodCase{"OPTIONS", "/api/info", "GET, HEAD"}}) {
    httplib::Client client = server_->client();
    httplib::Result result = c.method == "POST"     ? client.Post(c.path.c_str(), "{}", "application/json")
                             : c.method == "DELETE" ? client.Delete(c.path.c_str())
                             : c.method == "PUT"    ? client.Put(c.path.c_str(), "{}", "application/json")
                             : c.method == "PATCH"  ? client.Patch(c.path.c_str(), "{}", "application/json")
                             : c.method == "OPTIONS" ? client.Options(c.path.c_str())
                                                     : client.Get(c.path.c_str());
    ASSERT_TRUE(result) << c.method << " " << c.path;
    EXPECT_EQ(result->status, 405) << c.method << " " << c.path << ": " << result->body;
    EXPECT_EQ(result->get_header_value("Allow"), c.allow) << c.method << " " << c.path;
    EXPECT_NE(result->body.find("\"error\""), std::string::npos);
  }
  // Another asset than the ones embedded is a 405 only when it exists.
  const auto js = server_->post("/assets/app.js", std::string("{}"));
  EXPECT_EQ(js.status, server::find_embedded_asset("/assets/app.js") != nullptr ? 405 : 404);
}

TEST_F(ServeBadInput, NoPathReachesAFileOutsideTheEmbeddedAssets) {
  for (const std::string path :
       {"/../etc/passwd", "/assets/../../CMakeLists.txt", "/assets/%2e%2e/%2e%2e/CMakeLists.txt",
        "/assets/%2E%2E%2F%2E%2E%2FCMakeLists.txt", "/%2e%2e/%2e%2e/etc/passwd", "/assets/..%2f..%2fREADME.md",
        "/assets//etc/passwd", "/assets/%00../CMakeLists.txt", "/assets/./app.js/../../../CMakeLists.txt",
        "/..%5c..%5cCMakeLists.txt", "/etc/passwd", "/CMakeLists.txt", "/tools/server/router.cpp",
        "/web/index.html", "/assets/../index.html"}) {
    const testing::RawReply r = testing::raw_get(server_->port(), path);
    EXPECT_TRUE(r.status == 404 || r.status == 400) << path << ": " << r.text.substr(0, 200);
    EXPECT_EQ(r.text.find("cmake_minimum_required"), std::string::npos) << path;
    EXPECT_EQ(r.text.find("root:"), std::string::npos) << path;
    EXPECT_EQ(r.text.find("#include"), std::string::npos) << path;
  }
}

TEST_F(ServeBadInput, OversizedBodiesAre413) {
  const std::string body = json{{"prompt", std::string(70 * 1024, 'a')}}.dump();
  for (const char* path : {"/api/generate", "/api/probe", "/api/activations", "/api/info", "/nope"}) {
    expect_error(server_->post(path, body), 413, "64 KiB", path);
  }
  // Chunked, so the size is not known up front.
  std::string chunked = "POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n";
  for (int i = 0; i < 80; ++i) chunked += "400\r\n" + std::string(1024, 'a') + "\r\n";
  chunked += "0\r\n\r\n";
  EXPECT_EQ(testing::raw_http(server_->port(), chunked).status, 413);
}

TEST_F(ServeBadInput, ModelRequestsWhileTheModelIsBusyAre429) {
  const std::vector<std::pair<std::string, json>> requests = {
      {"/api/generate", {{"prompt", "the dog"}, {"max_tokens", 2}}},
      {"/api/probe", {{"prompt", "the dog"}, {"tokens", {" dog"}}}},
      {"/api/activations", {{"text", "the dog"}, {"layer", 0}, {"index", 1}}},
  };
  {
    // Hold the lock a running generation holds.
    const std::lock_guard busy(server_->api().context().model_mutex());
    for (const auto& [path, body] : requests) {
      const auto r = server_->post(path, body);
      expect_error(r, 429, "busy", path);
      EXPECT_EQ(r.header("Retry-After"), "1") << path;
    }
  }
  for (const auto& [path, body] : requests) EXPECT_EQ(server_->post(path, body).status, 200) << path;

  // And for real: a probe sent while a generation streams is refused, not
  // queued — unless the tiny model has already finished its 2 x 256 tokens,
  // when it is served. Either way nothing breaks.
  testing::RawStream stream(server_->port(), "/api/generate",
                            json{{"prompt", "the dog"}, {"max_tokens", 256}, {"temperature", 1.0}}.dump());
  ASSERT_TRUE(stream.wait_for("\"event\":\"token\"")) << stream.received();
  const auto refused = server_->post("/api/probe", json{{"prompt", "the dog"}, {"tokens", {" dog"}}});
  stream.close();
  EXPECT_TRUE(refused.status == 429 || refused.status == 200) << refused.text;
}

TEST_F(ServeBadInput, EndpointsWithoutTheirModelOrCompareAtlasAre409) {
  for (const auto& [path, body] : std::vector<std::pair<std::string, std::string>>{
           {"/api/generate", R"({"prompt": "hi"})"},
           {"/api/probe", R"({"prompt": "hi", "tokens": [" dog"]})"},
           {"/api/activations", R"({"text": "hi", "layer": 0, "index": 0})"},
           {"/api/generate", "not even json"}}) {
    expect_error(atlas_only_->post(path, body), 409, "model", path);
  }
  expect_error(server_->get("/api/compare/summary"), 409, "--compare", "summary");
  expect_error(server_->get("/api/compare/changed"), 409, "--compare", "changed");
}

TEST_F(ServeBadInput, MalformedHttpIsAnsweredAndTheServerKeepsServing) {
  const int port = server_->port();
  for (const std::string& request :
       {std::string("GARBAGE\r\n\r\n"), std::string("GET\r\n\r\n"),         "GET /" + std::string(9000, 'a') + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "GET /api/info HTTP/1.1\r\nHost: x\r\nX-Long: " + std::string(10000, 'h') + "\r\n\r\n",
        std::string("POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\nConnection: close\r\n\r\n{\"pro"),
        std::string("POST /api/generate HTTP/1.1\r\nHost: x\r\nContent-Length: -4\r\n\r\n"),
        std::string("POST /api/generate HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n"),
        std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11)}) {
    // A request cut short gets no answer until the server's read timeout;
    // the test does not wait for it.
    const testing::RawReply r = testing::raw_http(port, request, 1);
    EXPECT_NE(r.status, 200) << request.substr(0, 60);
    EXPECT_EQ(server_->get("/api/info").status, 200) << "after " << request.substr(0, 60);
  }
  // A client that connects and leaves, or leaves in the middle of a stream.
  testing::raw_http(port, "");
  {
    testing::RawStream leaver(port, "/api/generate", json{{"prompt", "the dog"}, {"max_tokens", 256}}.dump());
    EXPECT_TRUE(leaver.wait_for("\"event\":\"token\""));
  }
  // The generation notices at its next write and lets the model go.
  int status = 429;
  for (int attempt = 0; attempt < 200 && status == 429; ++attempt) {
    status = server_->post("/api/probe", json{{"prompt", "hi"}, {"tokens", {" dog"}}}).status;
    if (status == 429) std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(status, 200);
  EXPECT_EQ(server_->post("/api/probe", json{{"prompt", "hi"}, {"tokens", {" dog"}}}).status, 200);
}

TEST_F(ServeBadInput, ConcurrentClientsGetCorrectAnswers) {
  const auto expected_neuron = server_->get("/api/neurons/1/gate/42");
  const auto expected_search = server_->get("/api/search?q=dog&limit=5");
  const auto expected_layer = server_->get("/api/layers/0/down?sort=entropy&limit=10");
  ASSERT_EQ(expected_neuron.status, 200);
  ASSERT_EQ(expected_search.status, 200);
  std::atomic<int> wrong{0}, failed{0}, generated{0}, refused{0}, generations{0};
  std::vector<std::thread> clients;
  for (int t = 0; t < 6; ++t) {
    clients.emplace_back([&, t] {
      for (int i = 0; i < 30; ++i) {
        switch ((t + i) % 4) {
          case 0: {
            const auto r = server_->get("/api/neurons/1/gate/42");
            if (r.status != 200) ++failed;
            else if (r.body != expected_neuron.body) ++wrong;
            break;
          }
          case 1: {
            const auto r = server_->get("/api/search?q=dog&limit=5");
            if (r.status != 200) ++failed;
            else if (r.body != expected_search.body) ++wrong;
            break;
          }
          case 2: {
            const auto r = server_->get("/api/layers/0/down?sort=entropy&limit=10");
            if (r.status != 200) ++failed;
            else if (r.body != expected_layer.body) ++wrong;
            break;
          }
          default: {
            ++generations;
            const auto r = server_->post("/api/generate", json{{"prompt", "the dog"}, {"max_tokens", 8}});
            if (r.status == 200) ++generated;
            else if (r.status == 429) ++refused;
            else ++failed;
          }
        }
      }
    });
  }
  for (std::thread& c : clients) c.join();
  EXPECT_EQ(failed, 0);
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(generated, 0);
  EXPECT_EQ(generated + refused, generations);
}

// The `serve` command as a user runs it: a child process that prints its
// URL, answers, and exits 0 on SIGTERM.
TEST_F(ServeBadInput, TheServeCommandPrintsItsUrlAndStopsOnSigterm) {
  const std::string atlas = dir_->file("full.db");
  int out[2];
  ASSERT_EQ(::pipe(out), 0);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_addclose(&actions, out[0]);
  const std::string cli = testing::cli_path();
  std::vector<std::string> args = {cli, "serve", atlas, "--no-model", "--port", "0"};
  std::vector<char*> argv;
  for (std::string& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  pid_t pid = 0;
  ASSERT_EQ(posix_spawn(&pid, cli.c_str(), &actions, nullptr, argv.data(), environ), 0);
  posix_spawn_file_actions_destroy(&actions);
  ::close(out[1]);
  FILE* from_child = ::fdopen(out[0], "r");
  char line[256] = {0};
  ASSERT_NE(std::fgets(line, sizeof line, from_child), nullptr);
  const std::string first(line);
  const std::string prefix = "neuronlens: serving http://127.0.0.1:";
  ASSERT_EQ(first.rfind(prefix, 0), 0u) << first;
  const int port = std::atoi(first.substr(prefix.size()).c_str());
  ASSERT_GT(port, 0);
  const testing::RawReply info = testing::raw_get(port, "/api/info");
  EXPECT_EQ(info.status, 200) << info.text;
  EXPECT_NE(info.text.find("\"model_loaded\":false"), std::string::npos);
  ::kill(pid, SIGTERM);
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << "status " << status;
  std::string rest;
  while (std::fgets(line, sizeof line, from_child)) rest += line;
  std::fclose(from_child);
  EXPECT_NE(rest.find("stopped"), std::string::npos) << rest;
}

TEST_F(ServeBadInput, TheServeCommandRefusesBadArguments) {
  const std::string atlas = dir_->file("full.db");
  const std::string cli = testing::cli_path() + " serve ";
  for (const auto& [args, says] : std::vector<std::pair<std::string, std::string>>{
           {dir_->file("missing.db"), "no such atlas"},
           {atlas + " --port 70000", "--port"},
           {atlas + " --threads 999", "--threads"},
           {atlas + " --no-model --model " + testing::fixture_path("tiny_llama.gguf"), "contradict"},
           {atlas + " --model " + testing::fixture_path("tiny_llama_tied.gguf"), "sha256"},
           {atlas + " --model " + dir_->file("nowhere.gguf"), "not found"},
           {atlas + " --no-model --compare " + dir_->file("missing.db"), "no such atlas"}}) {
    std::string output;
    EXPECT_EQ(testing::run_command(cli + args, output), 2) << args << ": " << output;
    EXPECT_NE(output.find(says), std::string::npos) << args << ": " << output;
  }
}

}  // namespace
}  // namespace neuronlens

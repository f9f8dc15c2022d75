// Load test of `neuronlens serve` on loopback: N client threads send a
// bounded number of requests (or run for a bounded time, whichever ends
// first) to /api/search and /api/neurons (random mapped neurons), and the
// program prints requests/s, p50/p99 latency and errors per endpoint.
//
//   serve_load_bench --atlas ATLAS.db [--model M | --no-model] [--clients 4]
//                    [--requests 2000] [--seconds 20] [--server-threads 8]
//   serve_load_bench --port PORT ...     (a server already running on 127.0.0.1)
//
// With --atlas it starts the server in this process on a free port. Search
// words that are not a single token of the atlas's vocabulary (400) are
// dropped in a first pass; every other non-200 answer counts as an error.
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "neuronlens/error.h"
#include "server/api_server.h"

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string atlas;
  std::string model;
  bool no_model = false;
  int port = 0;
  int clients = 4;
  int64_t requests = 2000;
  double seconds = 20;
  int server_threads = 8;
  std::vector<std::string> words = {"dog", "cat", "house", "water", "music", "king", "red", "car",
                                    "city", "food", "love", "war", "time", "money", "tree", "book"};
};

struct EndpointStats {
  std::vector<double> latencies_ms;
  int64_t errors = 0;
};

[[noreturn]] void usage(const char* message) {
  std::fprintf(stderr, "serve_load_bench: %s\n", message);
  std::fprintf(stderr,
               "usage: serve_load_bench (--atlas ATLAS.db [--model M | --no-model] [--server-threads N] | --port P)\n"
               "                        [--clients N] [--requests N] [--seconds S] [--words w1,w2,...]\n");
  std::exit(2);
}

Options parse_options(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value after " + arg).c_str());
      return argv[++i];
    };
    if (arg == "--atlas") o.atlas = value();
    else if (arg == "--model") o.model = value();
    else if (arg == "--no-model") o.no_model = true;
    else if (arg == "--port") o.port = std::atoi(value().c_str());
    else if (arg == "--clients") o.clients = std::atoi(value().c_str());
    else if (arg == "--requests") o.requests = std::atoll(value().c_str());
    else if (arg == "--seconds") o.seconds = std::atof(value().c_str());
    else if (arg == "--server-threads") o.server_threads = std::atoi(value().c_str());
    else if (arg == "--words") {
      o.words.clear();
      const std::string list = value();
      size_t start = 0;
      while (start <= list.size()) {
        const size_t comma = std::min(list.find(',', start), list.size());
        if (comma > start) o.words.push_back(list.substr(start, comma - start));
        start = comma + 1;
      }
    } else {
      usage(("unknown argument " + arg).c_str());
    }
  }
  if (o.atlas.empty() == (o.port == 0)) usage("give either --atlas or --port");
  if (o.clients < 1 || o.clients > 256 || o.requests < 1 || o.seconds <= 0) usage("bad --clients/--requests/--seconds");
  return o;
}

double percentile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const auto at = static_cast<size_t>(q * static_cast<double>(values.size() - 1) + 0.5);
  return values[std::min(at, values.size() - 1)];
}

int run(const Options& o) {
  std::unique_ptr<neuronlens::server::ApiServer> server;
  std::thread serving;
  int port = o.port;
  if (!o.atlas.empty()) {
    neuronlens::server::ServeOptions serve;
    serve.atlas_path = o.atlas;
    serve.model_path = o.model;
    serve.no_model = o.no_model;
    const auto load_start = Clock::now();
    server = std::make_unique<neuronlens::server::ApiServer>(serve, o.server_threads);
    port = server->bind("127.0.0.1", 0);
    serving = std::thread([&] { server->run(); });
    while (!server->running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::printf("server: %s on 127.0.0.1:%d, %d worker threads, started in %.2f s\n", o.atlas.c_str(), port,
                o.server_threads, std::chrono::duration<double>(Clock::now() - load_start).count());
  }

  httplib::Client probe("127.0.0.1", port);
  probe.set_read_timeout(600, 0);
  const auto info_reply = probe.Get("/api/info");
  if (!info_reply || info_reply->status != 200) usage("no /api/info answer from the server");
  const nlohmann::json info = nlohmann::json::parse(info_reply->body);
  std::vector<std::pair<std::string, int64_t>> mapped;  // (kind, layer)
  for (const auto& [kind, layers] : info.at("mapped").items()) {
    for (const auto& layer : layers) mapped.emplace_back(kind, layer.get<int64_t>());
  }
  if (mapped.empty()) usage("the atlas has no mapped layers");
  const int64_t d_ffn = info.at("model").at("d_ffn");
  std::printf("atlas: %s, %lld neurons, exact search %s\n", info.at("model").at("name").get<std::string>().c_str(),
              static_cast<long long>(info.at("neurons").get<int64_t>()), info.at("exact_search").get<bool>() ? "on" : "off");

  // Words that are a token of this vocabulary; the first search of each is
  // timed apart (a search's first page is computed, later ones are cached).
  std::vector<std::string> words;
  for (const std::string& w : o.words) {
    const auto t0 = Clock::now();
    const auto r = probe.Get(("/api/search?q=" + w + "&limit=20").c_str());
    const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
    if (r && r->status == 200) {
      words.push_back(w);
      std::printf("  first search '%s': %.1f ms\n", w.c_str(), ms);
    }
  }
  if (words.empty()) usage("none of the search words is a single token of this atlas");

  std::atomic<int64_t> issued{0};
  const auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.seconds));
  std::mutex merge;
  EndpointStats search_stats, neuron_stats;
  const auto started = Clock::now();
  std::vector<std::thread> clients;
  for (int c = 0; c < o.clients; ++c) {
    clients.emplace_back([&, c] {
      httplib::Client client("127.0.0.1", port);
      client.set_read_timeout(60, 0);
      std::mt19937_64 rng(static_cast<uint64_t>(c) + 1);
      EndpointStats search, neuron;
      while (Clock::now() < deadline) {
        const int64_t n = issued.fetch_add(1);
        if (n >= o.requests) break;
        const bool is_search = n % 2 == 0;
        std::string path;
        if (is_search) {
          path = "/api/search?q=" + words[rng() % words.size()] + "&limit=20&offset=" + std::to_string((rng() % 5) * 20);
        } else {
          const auto& [kind, layer] = mapped[rng() % mapped.size()];
          path = "/api/neurons/" + std::to_string(layer) + "/" + kind + "/" + std::to_string(rng() % static_cast<uint64_t>(d_ffn));
        }
        const auto t0 = Clock::now();
        const auto r = client.Get(path.c_str());
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        EndpointStats& s = is_search ? search : neuron;
        s.latencies_ms.push_back(ms);
        if (!r || r->status != 200) ++s.errors;
      }
      std::lock_guard lock(merge);
      for (auto [from, to] : {std::pair{&search, &search_stats}, std::pair{&neuron, &neuron_stats}}) {
        to->latencies_ms.insert(to->latencies_ms.end(), from->latencies_ms.begin(), from->latencies_ms.end());
        to->errors += from->errors;
      }
    });
  }
  for (std::thread& t : clients) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - started).count();

  std::printf("\n%d clients, %.2f s, limits %lld requests / %.0f s\n", o.clients, elapsed,
              static_cast<long long>(o.requests), o.seconds);
  std::printf("%-14s %9s %9s %8s %10s %10s\n", "endpoint", "requests", "req/s", "errors", "p50 ms", "p99 ms");
  int64_t total = 0, errors = 0;
  for (const auto& [name, s] : {std::pair{"/api/search", &search_stats}, std::pair{"/api/neurons", &neuron_stats}}) {
    const auto n = static_cast<int64_t>(s->latencies_ms.size());
    std::printf("%-14s %9lld %9.1f %8lld %10.2f %10.2f\n", name, static_cast<long long>(n),
                static_cast<double>(n) / elapsed, static_cast<long long>(s->errors), percentile(s->latencies_ms, 0.5),
                percentile(s->latencies_ms, 0.99));
    total += n;
    errors += s->errors;
  }
  std::printf("%-14s %9lld %9.1f %8lld\n", "all", static_cast<long long>(total), static_cast<double>(total) / elapsed,
              static_cast<long long>(errors));
  if (server) {
    server->stop();
    serving.join();
  }
  return errors == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_options(argc, argv));
  } catch (const neuronlens::Error& e) {
    std::fprintf(stderr, "serve_load_bench: error: %s\n", e.what());
    return 2;
  }
}

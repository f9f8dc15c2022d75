// `neuronlens serve ATLAS`: the atlas (and, with its weights, the model) as a
// JSON API and web UI on http://127.0.0.1:8080/ (docs/api.md).
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstdio>
#include <thread>

#include "commands.h"
#include "neuronlens/error.h"
#include "server/api_server.h"

namespace neuronlens::cli {
namespace {

struct ServeCommandOptions {
  server::ServeOptions serve;
  std::string host = "127.0.0.1";
  int port = 8080;
  int threads = 0;
};

// SIGINT/SIGTERM write a byte here (the one thing a handler may safely do);
// a thread waiting on the other end stops the server. Masking the signals
// instead would not do: threads that libraries start before main (OpenBLAS)
// would still take them and die.
int stop_pipe[2] = {-1, -1};

extern "C" void on_stop_signal(int) {
  const char byte = 1;
  [[maybe_unused]] const ssize_t written = ::write(stop_pipe[1], &byte, 1);
}

int run_serve(const ServeCommandOptions& opt) {
  if (opt.port < 0 || opt.port > 65535) throw bad_input("--port must be 0 to 65535 (0: any free port)");
  if (opt.threads < 0 || opt.threads > 256) throw bad_input("--threads must be 0 (default) to 256");
  if (opt.serve.no_model && !opt.serve.model_path.empty())
    throw bad_input("--model and --no-model contradict each other");

  server::ApiServer api(opt.serve, opt.threads);
  const int port = api.bind(opt.host, opt.port);
  if (::pipe(stop_pipe) != 0) throw internal_error("cannot create a pipe for signal handling");
  struct sigaction action = {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);

  const bool ipv6 = opt.host.find(':') != std::string::npos;
  std::printf("neuronlens: serving http://%s%s%s:%d/\n", ipv6 ? "[" : "", opt.host.c_str(), ipv6 ? "]" : "", port);
  if (!api.context().model_note().empty()) {
    std::printf("neuronlens: no model weights (%s): search ranks within the stored top-k; generate, probe and "
                "activations are off\n", api.context().model_note().c_str());
  }
  std::fflush(stdout);

  std::thread stopper([&] {
    char byte = 0;
    while (::read(stop_pipe[0], &byte, 1) < 0 && errno == EINTR) {
    }
    // A signal that came before the server listened would be lost to
    // stop(): wait until it runs (byte 2: run() has already returned).
    while (byte == 1 && !api.running()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    api.stop();
  });
  api.run();
  const char finished = 2;  // wake the stopper if no signal did
  [[maybe_unused]] const ssize_t written = ::write(stop_pipe[1], &finished, 1);
  stopper.join();
  std::printf("neuronlens: stopped\n");
  return 0;
}

}  // namespace

Runner add_serve_command(CLI::App& app) {
  auto opt = std::make_shared<ServeCommandOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Browse an atlas in the web browser: JSON API and web UI (docs/api.md)");
  cmd->add_option("atlas", opt->serve.atlas_path, "Atlas (SQLite file made by neuronlens map)")->required();
  cmd->add_option("--model", opt->serve.model_path, "Weights for the atlas, if not at the path it records");
  cmd->add_flag("--no-model", opt->serve.no_model, "Serve the atlas alone (no exact search, no generation)");
  cmd->add_option("--compare", opt->serve.compare_path, "A second atlas of the same shape to compare with");
  cmd->add_option("--host", opt->host, "Address to listen on (loopback unless you ask)")->capture_default_str();
  cmd->add_option("--port", opt->port, "Port; 0 picks a free one")->capture_default_str();
  cmd->add_option("--threads", opt->threads, "Worker threads (0: the HTTP library's default)")->capture_default_str();
  return [opt] { return run_serve(*opt); };
}

}  // namespace neuronlens::cli

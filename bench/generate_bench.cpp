// Times the runtime (src/runtime/) the way llama.cpp's llama-bench does:
// prompt processing (pp: P tokens in one batched forward, logits for the last
// one) and generation (tg: n tokens one at a time through the KV cache,
// starting from an empty cache, each chosen greedily), in tokens/s, with
// several hook set-ups interleaved in the same process:
//   no hooks        the plain model
//   clamp L:I=V     one neuron clamped (default 29:808=36, the dog neuron of
//                   SmolLM2-135M-Instruct)
//   no-op hooks     a hook that does nothing at every point (7 a layer and
//                   the final norm: 7 x n_layers + 1 calls per forward): an
//                   upper bound on what the hook machinery costs; an unused
//                   point costs less
// Each figure is the median of --repeats runs, after one warm-up run.
//
// usage: generate_bench MODEL [--threads N] [--prompt-tokens 128] [--gen-tokens 64]
//                             [--repeats 5] [--clamp L:I=V] [--weights float32|quantized] [--json]
// The prompt is token ids 1 + (7919 t mod (V-1)), t = 0..P-1 (content does
// not change the speed; bench/transformers_generate_baseline.py uses the same).
// The CPU kernels are the fastest this CPU runs; NEURONLENS_KERNEL_PATH=avx2
// (or avx512vnni, portable) times another path (backends/cpu/kernel_path.h),
// e.g. one run per path in turns. The path is printed with the figures.
#include <cblas.h>
#include <omp.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "backends/cpu/kernel_path.h"
#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "neuronlens/sampling.h"

using namespace neuronlens;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t) { return std::chrono::duration<double>(clock_type::now() - t).count(); }

// CPU time of the whole process (all threads), seconds.
double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

// Wall-clock and process CPU seconds of one measurement.
struct Timing {
  double wall = 0, cpu = 0;
};

class Stopwatch {
 public:
  Timing read() const { return {seconds_since(wall_), process_cpu_seconds() - cpu_}; }

 private:
  clock_type::time_point wall_ = clock_type::now();
  double cpu_ = process_cpu_seconds();
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

struct Options {
  std::string model;
  int threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  int64_t prompt_tokens = 128, gen_tokens = 64;
  int repeats = 5;
  int64_t clamp_layer = 29, clamp_neuron = 808;
  float clamp_value = 36.0f;
  WeightFormat weights = SessionOptions{}.weights;
  bool json = false;
};

Options parse(int argc, char** argv) {
  Options o;
  if (argc < 2) throw bad_input("usage: generate_bench MODEL [--threads N] [--prompt-tokens P] [--gen-tokens N] "
                            "[--repeats R] [--clamp L:I=V] [--weights float32|quantized] [--json]");
  o.model = argv[1];
  for (int i = 2; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--json") {
      o.json = true;
      continue;
    }
    if (i + 1 >= argc) throw bad_input("option " + arg + " needs a value");
    const std::string value = argv[++i];
    if (arg == "--threads") o.threads = std::stoi(value);
    else if (arg == "--prompt-tokens") o.prompt_tokens = std::stoll(value);
    else if (arg == "--gen-tokens") o.gen_tokens = std::stoll(value);
    else if (arg == "--repeats") o.repeats = std::stoi(value);
    else if (arg == "--weights") o.weights = parse_weight_format(value);
    else if (arg == "--clamp") {
      long long layer = 0, neuron = 0;
      float v = 0;
      if (std::sscanf(value.c_str(), "%lld:%lld=%f", &layer, &neuron, &v) != 3) throw bad_input("--clamp wants L:I=V");
      o.clamp_layer = layer;
      o.clamp_neuron = neuron;
      o.clamp_value = v;
    } else {
      throw bad_input("unknown option " + arg);
    }
  }
  if (o.threads < 1 || o.prompt_tokens < 1 || o.gen_tokens < 1 || o.repeats < 1) throw bad_input("counts must be >= 1");
  return o;
}

struct Setup {
  std::string name;
  std::function<void(Session&)> install;  // registers the hooks on a session without any
};

// One batched forward of the prompt, logits for its last token.
Timing time_prompt(Session& s, const std::vector<int32_t>& prompt) {
  s.reset();
  const Stopwatch watch;
  const std::vector<float> logits = s.forward(prompt, LogitsFor::LastToken);
  const Timing t = watch.read();
  if (logits.empty()) throw internal_error("no logits");
  return t;
}

// n greedy tokens from an empty cache, one forward each.
Timing time_generation(Session& s, int32_t first, int64_t n, std::vector<int32_t>& produced) {
  s.reset();
  produced.clear();
  int32_t token = first;
  const Stopwatch watch;
  for (int64_t i = 0; i < n; ++i) {
    const std::vector<float> logits = s.forward({token}, LogitsFor::LastToken);
    token = argmax_token(logits);
    produced.push_back(token);
  }
  return watch.read();
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse(argc, argv);
    omp_set_num_threads(o.threads);
    openblas_set_num_threads(o.threads);

    const Model model = Model::load(o.model);
    const ModelConfig& c = model.config();
    auto t = clock_type::now();
    Session session(model, SessionOptions{o.weights});
    const double load_s = seconds_since(t);

    std::vector<int32_t> prompt(static_cast<size_t>(o.prompt_tokens));
    for (int64_t i = 0; i < o.prompt_tokens; ++i) prompt[static_cast<size_t>(i)] = static_cast<int32_t>(1 + (7919 * i) % (c.vocab_size - 1));

    const std::string clamp_name = "clamp " + std::to_string(o.clamp_layer) + ":" + std::to_string(o.clamp_neuron) + "=" +
                                   std::to_string(o.clamp_value).substr(0, std::to_string(o.clamp_value).find('.') + 2);
    const std::vector<Setup> setups = {
        {"no hooks", [](Session&) {}},
        {clamp_name, [&](Session& s) { s.clamp_neurons(o.clamp_layer, {o.clamp_neuron}, o.clamp_value); }},
        {"no-op hooks at every point",
         [](Session& s) {
           for (int p = 0; p < kHookPointCount; ++p) {
             s.add_hook(static_cast<HookPoint>(p), kEveryLayer, [](int64_t, HookPoint, float*, int64_t, int64_t, int64_t) {});
           }
         }},
    };

    // tokens/s by wall clock, and per CPU-second of the process (all threads;
    // on a busy machine the first falls with the share of the CPU we get).
    std::vector<std::vector<double>> pp(setups.size()), tg(setups.size()), pp_cpu(setups.size()), tg_cpu(setups.size());
    std::vector<std::vector<int32_t>> produced(setups.size());
    for (int r = -1; r < o.repeats; ++r) {  // r = -1: warm-up, not counted
      for (size_t k = 0; k < setups.size(); ++k) {
        session.clear_hooks();
        setups[k].install(session);
        const Timing p = time_prompt(session, prompt);
        const Timing g = time_generation(session, prompt.front(), o.gen_tokens, produced[k]);
        if (r < 0) continue;
        pp[k].push_back(static_cast<double>(o.prompt_tokens) / p.wall);
        tg[k].push_back(static_cast<double>(o.gen_tokens) / g.wall);
        pp_cpu[k].push_back(static_cast<double>(o.prompt_tokens) / p.cpu);
        tg_cpu[k].push_back(static_cast<double>(o.gen_tokens) / g.cpu);
      }
    }
    session.clear_hooks();

    nlohmann::json j;
    j["model"] = c.name;
    j["threads"] = o.threads;
    j["kernel_path"] = std::string(cpu::kernel_path_name(cpu::best_kernel_path()));
    j["weights"] = std::string(weight_format_name(o.weights));
    j["prompt_tokens"] = o.prompt_tokens;
    j["gen_tokens"] = o.gen_tokens;
    j["repeats"] = o.repeats;
    j["load_s"] = load_s;
    j["weight_bytes"] = session.weight_bytes();
    for (size_t k = 0; k < setups.size(); ++k) {
      j["setups"].push_back({{"name", setups[k].name},
                             {"pp_tok_s", median(pp[k])},
                             {"tg_tok_s", median(tg[k])},
                             {"pp_runs", pp[k]},
                             {"tg_runs", tg[k]},
                             {"pp_tok_per_cpu_s", median(pp_cpu[k])},
                             {"tg_tok_per_cpu_s", median(tg_cpu[k])},
                             {"generated_first", std::vector<int32_t>(produced[k].begin(), produced[k].begin() + std::min<size_t>(8, produced[k].size()))}});
    }
    if (o.json) {
      std::cout << j.dump(2) << "\n";
      return 0;
    }
    std::printf("%s, %d threads, %s weights (%.0f MiB, session set up in %.2f s), %s kernels; median of %d runs\n",
                c.name.c_str(), o.threads, weight_format_name(o.weights).data(),
                static_cast<double>(session.weight_bytes()) / 1048576.0, load_s,
                cpu::kernel_path_name(cpu::best_kernel_path()).data(), o.repeats);
    const std::string pp_name = "pp" + std::to_string(o.prompt_tokens), tg_name = "tg" + std::to_string(o.gen_tokens);
    std::printf("%-30s %14s %14s %18s %18s\n", "hooks", (pp_name + " tok/s").c_str(), (tg_name + " tok/s").c_str(),
                (pp_name + " tok/cpu-s").c_str(), (tg_name + " tok/cpu-s").c_str());
    for (size_t k = 0; k < setups.size(); ++k) {
      std::printf("%-30s %14.1f %14.1f %18.1f %18.1f\n", setups[k].name.c_str(), median(pp[k]), median(tg[k]),
                  median(pp_cpu[k]), median(tg_cpu[k]));
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "generate_bench: %s\n", e.what());
    return 2;
  }
}

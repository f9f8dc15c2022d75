// Times the neuron map on a model, side by side with the bare float32 GEMM
// for the same products (the limit for an exact float32 method), in one
// process, and prints JSON for bench/run_map_bench.py.
//
// usage: neuron_map_bench MODEL [--layers 0-29] [--kinds up,gate,down] [--precision auto|exact|bf16]
//                          [--backend NAME]
//   (a) neuronlens: load + dequantise vectors, RMSNorm, fused GEMM with online
//       softmax and top-k, float64 re-score (no atlas writes)
//   (c) bare GEMM: [1024-neuron chunk, d] x [V, d]^T per chunk, nothing else,
//       on the same normalised vectors, taking turns with (a) layer by layer
#include <sys/resource.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "backends/cpu/gemm.h"
#include "neuronlens/decode.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/tensor.h"

using namespace neuronlens;
using clock_type = std::chrono::steady_clock;

static double seconds_since(clock_type::time_point t) {
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s MODEL [--layers L] [--kinds K] [--precision auto|exact|bf16] [--backend NAME]\n",
                 argv[0]);
    return 2;
  }
  try {
    std::string layers_text = "all", kinds_text = "all";
    DecodeSettings settings;
    for (int i = 2; i + 1 < argc; i += 2) {
      if (!std::strcmp(argv[i], "--layers")) layers_text = argv[i + 1];
      else if (!std::strcmp(argv[i], "--kinds")) kinds_text = argv[i + 1];
      else if (!std::strcmp(argv[i], "--precision")) settings.precision = precision_from_name(argv[i + 1]);
      else if (!std::strcmp(argv[i], "--backend")) settings.backend = argv[i + 1];
      else throw bad_input(std::string("unknown option ") + argv[i]);
    }
    const Model model = Model::load(argv[1]);
    const ModelConfig& c = model.config();
    const auto layers = parse_layer_list(layers_text, c.n_layers);
    const auto kinds = parse_kind_list(kinds_text);
    const int64_t vectors = static_cast<int64_t>(layers.size() * kinds.size()) * c.d_ffn;
    const double flops = 2.0 * static_cast<double>(vectors) * static_cast<double>(c.vocab_size) * static_cast<double>(c.d_model);

    auto t0 = clock_type::now();
    const LmHeadDecoder decoder(model, settings);
    decoder.prepare_for(c.d_ffn);  // the backend's packed head, made once per map
    const double setup_s = seconds_since(t0);
    // (c)'s own copy of the head [V, d], dequantised as the decoder does (not timed).
    const TensorView& head_view = model.lm_head();
    std::vector<float> head(static_cast<size_t>(c.vocab_size * c.d_model));
    dequantize_rows(head_view, 0, c.vocab_size, head.data());

    // (a) and (c) take turns on each layer and kind, in alternating order, so
    // a change in the machine's speed (other jobs, clocks) falls on both.
    constexpr int64_t kChunk = 1024;  // (c): [1024-vector chunk, d] x [V, d]^T
    std::vector<float> v, out(static_cast<size_t>(kChunk * c.vocab_size));
    double load_s = 0, decode_s = 0, gemm_s = 0;
    int64_t checksum = 0, turn = 0;
    auto run_a = [&] {
      const auto t = clock_type::now();
      const auto r = decoder.decode_normalized(v.data(), c.d_ffn);
      decode_s += seconds_since(t);
      checksum += r.front().top_ids.front();
    };
    auto run_c = [&] {
      const auto t = clock_type::now();
      for (int64_t first = 0; first < c.d_ffn; first += kChunk) {
        const int64_t n = std::min(kChunk, c.d_ffn - first);
        cpu::gemm_abt(n, c.vocab_size, c.d_model, v.data() + first * c.d_model, c.d_model, head.data(),
                      c.d_model, out.data(), c.vocab_size);
      }
      gemm_s += seconds_since(t);
    };
    for (int64_t layer : layers) {
      for (VectorKind kind : kinds) {
        const auto t = clock_type::now();
        load_neuron_vectors(model, kind, layer, v);
        decoder.normalize(v.data(), c.d_ffn);
        load_s += seconds_since(t);
        if (turn++ % 2 == 0) {
          run_a();
          run_c();
        } else {
          run_c();
          run_a();
        }
      }
    }
    nlohmann::json j;
    j["model"] = c.name;
    j["vectors"] = vectors;
    j["vocab_size"] = c.vocab_size;
    j["d_model"] = c.d_model;
    j["layers"] = layers.size();
    j["kinds"] = kinds.size();
    j["flops"] = flops;
    j["backend"] = decoder.backend_name();
    j["precision"] = precision_name(decoder.precision());
    j["neuronlens"] = {{"setup_s", setup_s}, {"load_norm_s", load_s}, {"decode_s", decode_s},
                       {"total_s", setup_s + load_s + decode_s}};
    j["bare_gemm"] = {{"seconds", gemm_s}, {"gflops", flops / gemm_s / 1e9}};
    j["checksum"] = checksum;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    j["peak_rss_bytes"] = static_cast<int64_t>(usage.ru_maxrss) * 1024;
    std::cout << j.dump(2) << "\n";
    return 0;
  } catch (const Error& e) {
    std::fprintf(stderr, "neuron_map_bench: %s\n", e.what());
    return 2;
  }
}

#include "neuronlens/map_estimate.h"

#include <algorithm>

#include "backends/cpu/gemm.h"

namespace neuronlens {

MapEstimate estimate_neuron_map(const ModelConfig& c, int kinds, bool measure) {
  MapEstimate e;
  e.vectors = c.n_layers * c.d_ffn * kinds;
  e.flops = 2.0 * static_cast<double>(e.vectors) * static_cast<double>(c.vocab_size) * static_cast<double>(c.d_model);
  // Resident float32 data while mapping: the dequantised LM head [V, d], one
  // layer's decoded vectors [kinds * F, d], and per-thread logit tiles of
  // about 256 neurons x 4096 vocabulary rows.
  const int64_t lm_head = c.vocab_size * c.d_model * 4;
  const int64_t layer = static_cast<int64_t>(kinds) * c.d_ffn * c.d_model * 4;
  const int64_t tiles = 8 * 256 * 4096 * 4;
  e.peak_bytes = lm_head + layer + tiles;
  if (measure) {
    // A product of the shape the map runs: a block of neurons against a
    // vocabulary tile, at the model's hidden size.
    e.gemm_gflops = cpu::measure_gemm_gflops(256, 2048, std::min<int64_t>(c.d_model, 8192));
    e.seconds = e.flops / (e.gemm_gflops * 1e9);
  }
  return e;
}

}  // namespace neuronlens

// What a full neuron map of a model costs, before running it.
#pragma once

#include <cstdint>

#include "neuronlens/model.h"

namespace neuronlens {

struct MapEstimate {
  int64_t vectors = 0;        // neurons x kinds decoded
  double flops = 0;           // 2 * vectors * V * d for the LM-head products
  int64_t peak_bytes = 0;     // float32 LM head + one layer's vectors + tiles
  double gemm_gflops = 0;     // measured float32 GEMM rate used for the time
  double seconds = 0;         // flops / rate: the float32 GEMM bound
};

// `kinds` is how many of up/gate/down are decoded (1 to 3). When
// `measure` is false no GEMM is timed and `seconds` stays 0.
MapEstimate estimate_neuron_map(const ModelConfig& config, int kinds, bool measure);

}  // namespace neuronlens

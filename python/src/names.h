// The names a Python caller uses for the library's enums ("up", "mlp_act",
// "final"), parsed by the library's own parsers where it has them.
#pragma once

#include <string>
#include <string_view>

#include "neuronlens/decode.h"
#include "neuronlens/error.h"
#include "neuronlens/runtime.h"

namespace neuronlens::python {

// "residual_in", "attn_z", "attn_out", "mlp_gate", "mlp_up", "mlp_act", "mlp_out",
// "residual_out", "final_norm". Throws Error naming the valid ones.
inline HookPoint hook_point_from_name(std::string_view name) {
  std::string valid;
  for (int i = 0; i < kHookPointCount; ++i) {
    const auto point = static_cast<HookPoint>(i);
    if (hook_point_name(point) == name) return point;
    valid += (i ? ", " : "") + std::string(hook_point_name(point));
  }
  throw bad_input("unknown hook point '" + std::string(name) + "' (expected one of " + valid + ")");
}

// Throws Error unless 0 <= layer < n_layers.
inline void check_layer(int64_t layer, int64_t n_layers) {
  if (layer < 0 || layer >= n_layers) {
    throw bad_input("layer " + std::to_string(layer) + " is out of range (the model has layers 0 to " +
                    std::to_string(n_layers - 1) + ")");
  }
}

// Throws Error unless 0 <= neuron < d_ffn.
inline void check_neuron(int64_t neuron, int64_t d_ffn) {
  if (neuron < 0 || neuron >= d_ffn) {
    throw bad_input("neuron " + std::to_string(neuron) + " is out of range (layers have neurons 0 to " +
                    std::to_string(d_ffn - 1) + ")");
  }
}

// Throws Error unless 0 <= head < n_heads.
inline void check_head(int64_t head, int64_t n_heads) {
  if (head < 0 || head >= n_heads) {
    throw bad_input("head " + std::to_string(head) + " is out of range (layers have heads 0 to " +
                    std::to_string(n_heads - 1) + ")");
  }
}

}  // namespace neuronlens::python

// A model's RMSNorm weight as its forward pass applies it: offset + γ
// (ModelConfig::norm_weight_offset: 1 for a Gemma Hugging Face checkpoint,
// whose norm multiplies by 1 + γ; 0 elsewhere). The runtime and the decoder
// both read norms through this, so they cannot disagree on a family's norm.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "model/finite_weights.h"
#include "neuronlens/model.h"
#include "neuronlens/tensor.h"

namespace neuronlens {

// The weight [size] of norm `kind` (for `layer` when per-layer), or empty
// when the model has no such norm.
inline std::vector<float> applied_norm_weight(const Model& model, WeightKind kind, int64_t layer = -1) {
  const TensorView* tensor = model.find_weight(kind, layer);
  if (tensor == nullptr) return {};
  std::vector<float> w(static_cast<size_t>(tensor->elements()));
  dequantize_rows(*tensor, 0, tensor->rows(), w.data());
  require_finite(w.data(), tensor->elements(),
                 [&](int64_t i) { return "norm '" + tensor->name + "' value " + std::to_string(i); });
  for (float& x : w) x += model.config().norm_weight_offset;
  return w;
}

}  // namespace neuronlens

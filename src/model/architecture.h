// The one table of weight names: for each WeightKind, its GGUF and Hugging
// Face tensor names and its expected shape. Both format loaders and every tool
// that walks the weights go through this table.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "neuronlens/model.h"

namespace neuronlens {

struct WeightSpec {
  WeightKind kind;
  bool per_layer;
  const char* gguf_name;  // "{}" stands for the layer number
  const char* hf_name;    // nullptr where Hugging Face has no such tensor
};

// Every weight kind, in WeightKind order.
const std::vector<WeightSpec>& weight_specs();
const WeightSpec& weight_spec(WeightKind kind);

constexpr int kWeightKindCount = static_cast<int>(WeightKind::FfnDown) + 1;

// Tensor name of `kind` (for `layer` when per-layer) in the given format.
std::string weight_name(WeightKind kind, ModelFormat format, int64_t layer);

// Expected shape, outermost first, with a label per dimension for messages
// ("F=1536").
struct ExpectedShape {
  std::vector<int64_t> dims;
  std::vector<std::string> labels;
  std::string to_string() const;  // "[F=1536, d=576]"
};
ExpectedShape expected_shape(WeightKind kind, const ModelConfig& config);

// Whether a model of `config` must have this weight.
bool weight_required(WeightKind kind, const ModelConfig& config);

// Architecture from its GGUF / Hugging Face name ("llama", "qwen2",
// "mistral"); throws Error listing the supported ones otherwise.
Architecture architecture_from_name(const std::string& name, const std::string& where);

// Checks hyperparameters for sanity (positive, divisible, bounded) so later
// allocations sized by them stay reasonable. Throws Error naming `where`.
void validate_config(const ModelConfig& config, const std::string& where);

}  // namespace neuronlens

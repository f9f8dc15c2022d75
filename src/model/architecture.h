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

constexpr int kWeightKindCount = static_cast<int>(WeightKind::FfnPostNorm) + 1;

// Tensor name of `kind` (for `layer` when per-layer) in the given format, as
// a model of `arch` names it ("" where it has none). Hugging Face's names
// differ by family: Gemma's and OLMo 2's "post_attention_layernorm" is the
// norm on the attention output, Llama's the norm before the MLP.
std::string weight_name(WeightKind kind, ModelFormat format, int64_t layer, Architecture arch = Architecture::Llama);

// What a family does differently, before the file's own keys are read: the
// loaders start from these and then read windows, bases and caps.
struct ArchitectureTraits {
  Architecture arch;
  const char* name;     // GGUF general.architecture, and the usual config.json model_type
  const char* hf_name;  // config.json model_type where it differs ("gemma3_text"), else nullptr
  // GGUF q/k row order: llama.cpp's converter permutes llama-style models'
  // rows (Interleaved) and keeps every other family's (NeoX).
  RopeStyle gguf_rope_style;
  MlpActivation activation;
  QkNorm qk_norm;
  bool qkv_bias;    // q/k/v biases are part of the family (Qwen2)
  bool pre_norms;
  bool post_norms;
  // Gemma: RMSNorm weights are (1 + γ) (Hugging Face stores γ, GGUF 1 + γ)
  // and the embedding is scaled by sqrt(d).
  bool gemma_style;
  // Every n-th layer is global, the others local, when the file gives a
  // window but no pattern (llama.cpp's defaults); 0: one window for all.
  int64_t default_sliding_pattern;
  // q/k/v and gate/up stored fused (Phi-3): split by the loader.
  bool fused_projections = false;
};
const ArchitectureTraits& architecture_traits(Architecture arch);

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
// "gemma3_text", ...); throws Error listing the supported ones otherwise.
Architecture architecture_from_name(const std::string& name, const std::string& where);

// Per-layer local/global flags [n_layers] for a pattern of period n: layer l
// is global when (l + 1) % n == 0, local otherwise (Gemma 3: n = 6, Gemma 2:
// n = 2, so even layers are local), as llama.cpp's set_swa_pattern and
// Hugging Face's layer_types have it.
std::vector<uint8_t> sliding_layers_from_period(int64_t period, int64_t n_layers);

// Checks hyperparameters for sanity (positive, divisible, bounded) so later
// allocations sized by them stay reasonable. Throws Error naming `where`.
// The most layers a model may declare (validate_config refuses more).
inline constexpr int64_t kMaxLayers = 1024;
void validate_config(const ModelConfig& config, const std::string& where);

}  // namespace neuronlens

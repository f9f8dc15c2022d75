// The Python `Session`: a library Session over a Model's weights, with the
// TextModel kept alive for the tokenizer and chat template generate uses.
#pragma once

#include <nanobind/nanobind.h>

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "arrays.h"
#include "neuronlens/runtime.h"
#include "neuronlens/text_model.h"
#include "py_model.h"

namespace neuronlens::python {

class PySession {
 public:
  // weights: "quantized", "exact" or "float32"; kv_cache: "f32" or "f16".
  PySession(const PyModel& model, const std::string& weights, const std::string& kv_cache);

  int64_t n_layers() const { return text_->model.config().n_layers; }
  int64_t position() const { return session_.position(); }
  void reset() { session_.reset(); }
  int64_t weight_bytes() const { return session_.weight_bytes(); }
  int64_t cache_bytes() const { return session_.cache_bytes(); }

  // The logits [n, V] (last_only: [1, V]) of `tokens`; from an empty cache
  // unless keep_cache, when they continue the cached sequence.
  NumpyArray<float> forward(const std::vector<int32_t>& tokens, bool keep_cache, bool last_only);
  // The logits and {(point, layer): activations [n, width]}; the point
  // "attn_pattern" records attention weights [n_heads, n, position + n].
  std::pair<NumpyArray<float>, nanobind::dict> run_with_cache(const std::vector<int32_t>& tokens,
                                                              nanobind::iterable points, bool keep_cache,
                                                              bool last_only);
  // The logits with Python functions as hooks, {(point, layer) or point: fn}.
  NumpyArray<float> run_with_hooks(const std::vector<int32_t>& tokens, nanobind::dict hooks, bool keep_cache,
                                   bool last_only);
  // The generated text, from an empty cache, with the interventions for this
  // call only.
  std::string generate(const std::string& prompt, int64_t max_tokens, bool chat, uint64_t seed, double temperature,
                       int64_t top_k, double top_p, const std::map<std::pair<int64_t, int64_t>, float>& clamp,
                       const std::vector<std::pair<int64_t, int64_t>>& ablate,
                       const std::map<std::pair<int64_t, int64_t>, float>& scale_heads,
                       const std::vector<std::pair<int64_t, int64_t>>& ablate_heads,
                       std::optional<nanobind::callable> on_token);

 private:
  std::shared_ptr<const TextModel> text_;
  Session session_;
};

}  // namespace neuronlens::python

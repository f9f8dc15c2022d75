// Rotary position embeddings (RoPE) for one model.
//
// Frequency i of a head of size h (i < h/2) is theta^(-2i/h), then changed by
// the model's scaling: "linear" divides it by the factor; "llama3" divides the
// low frequencies by the factor and blends the middle band (Hugging Face's
// _compute_llama3_parameters); a GGUF rope_freqs tensor [h/2] divides
// frequency i by rope_freqs[i] (llama.cpp's freq_factors, how its converter
// stores llama3 scaling).
//
// Which dimensions pair up depends on RopeStyle: NeoX rotates (j, j + h/2)
// with frequency j; Interleaved rotates (2j, 2j+1) with frequency j.
#pragma once

#include <cstdint>
#include <vector>

#include "neuronlens/model.h"

namespace neuronlens::runtime {

class RotaryEmbedding {
 public:
  // Throws Error on a scaling type it does not know or a rope_freqs tensor of
  // the wrong size.
  RotaryEmbedding(const ModelConfig& config, const std::vector<float>& rope_freqs);

  // Rotates `n_heads` heads of every row of x [n_tokens, row_stride]; row t is
  // at position first_position + t.
  void apply(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t first_position) const;

  const std::vector<double>& inverse_frequencies() const { return inv_freq_; }

 private:
  int64_t head_dim_;
  RopeStyle style_;
  std::vector<double> inv_freq_;  // [h/2]
};

}  // namespace neuronlens::runtime

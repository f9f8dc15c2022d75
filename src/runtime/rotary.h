// Rotary position embeddings (RoPE) for one model.
//
// The first r = rotary_dim dimensions of each head rotate (all h of them but
// for partial rotary models such as Phi-4-mini); the rest pass through.
// Frequency i (i < r/2) is theta^(-2i/r), then changed by the model's
// scaling: "linear" divides it by the factor; "llama3" divides the low
// frequencies by the factor and blends the middle band (Hugging Face's
// _compute_llama3_parameters); a GGUF rope_freqs tensor [r/2] divides
// frequency i by rope_freqs[i] (llama.cpp's freq_factors, how its converter
// stores llama3 scaling); "longrope" divides it by short_factor[i] or
// long_factor[i], by the sequence's length, and multiplies cos and sin by
// the attention factor (Hugging Face's _compute_longrope_parameters).
//
// Which dimensions pair up depends on RopeStyle: NeoX rotates (j, j + r/2)
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
  // at position first_position + t. `sequence_length` (the tokens of the
  // whole sequence these rows belong to) picks LongRoPE's factors: short
  // while it is at most the original context, long beyond.
  void apply(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t first_position,
             int64_t sequence_length) const;

  // LongRoPE: whether a sequence of this many tokens takes the long factors
  // (false for every other scaling).
  bool uses_long_factors(int64_t sequence_length) const {
    return !inv_freq_long_.empty() && sequence_length > original_context_;
  }

  // [rotary_dim/2], the frequencies of a sequence of `sequence_length` tokens.
  const std::vector<double>& inverse_frequencies(int64_t sequence_length = 0) const {
    return uses_long_factors(sequence_length) ? inv_freq_long_ : inv_freq_;
  }

 private:
  int64_t head_dim_;
  int64_t rotary_dim_;
  RopeStyle style_;
  std::vector<double> inv_freq_;       // [rotary_dim/2]; LongRoPE: the short factors'
  std::vector<double> inv_freq_long_;  // [rotary_dim/2], LongRoPE only: the long factors'
  int64_t original_context_ = 0;       // LongRoPE: the longest sequence on the short factors
  double cos_sin_scale_ = 1.0;         // LongRoPE's attention factor
};

}  // namespace neuronlens::runtime

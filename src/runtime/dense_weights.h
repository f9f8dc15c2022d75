// A model's weights dequantised to float32, in Hugging Face row order as the
// file stores them (GGUF llama q/k rows stay permuted: the rotary embedding
// follows ModelConfig::rope_style instead). Shapes as in model.h.
#pragma once

#include <cstdint>
#include <vector>

#include "neuronlens/model.h"

namespace neuronlens::runtime {

struct DenseLayer {
  std::vector<float> attn_norm;                 // [d]
  std::vector<float> attn_q, attn_k, attn_v;    // [H*h, d], [K*h, d], [K*h, d]
  std::vector<float> attn_q_bias, attn_k_bias, attn_v_bias;  // [H*h], [K*h], [K*h]; empty without qkv_bias
  std::vector<float> attn_output;               // [d, H*h]
  std::vector<float> ffn_norm;                  // [d]
  std::vector<float> ffn_gate, ffn_up;          // [F, d]
  std::vector<float> ffn_down;                  // [d, F]
};

struct DenseWeights {
  std::vector<float> token_embedding;  // [V, d]
  std::vector<float> output_norm;      // [d]
  std::vector<float> output;           // [V, d]; empty when tied (use token_embedding)
  std::vector<float> rope_freqs;       // [h/2] frequency divisors; empty when the model has none
  std::vector<DenseLayer> layers;

  const float* lm_head() const { return output.empty() ? token_embedding.data() : output.data(); }
  int64_t bytes() const;
};

// Throws Error (from dequantisation) on a bad tensor.
DenseWeights dequantize_model(const Model& model);

}  // namespace neuronlens::runtime

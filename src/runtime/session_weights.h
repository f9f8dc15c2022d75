// A model's weights as a Session holds them: the matrices as WeightMatrix
// (float32, or the file's Q4_0/Q4_1/Q8_0 blocks), norms, biases and rope
// frequencies as float32. Rows in Hugging Face order as the file stores them
// (GGUF llama q/k rows stay permuted: the rotary embedding follows
// ModelConfig::rope_style instead). Shapes as in model.h.
#pragma once

#include <cstdint>
#include <vector>

#include "neuronlens/model.h"
#include "runtime/weight_matrix.h"

namespace neuronlens::runtime {

struct LayerWeights {
  std::vector<float> attn_norm;                 // [d]
  WeightMatrix attn_q, attn_k, attn_v;          // [H*h, d], [K*h, d], [K*h, d]
  std::vector<float> attn_q_bias, attn_k_bias, attn_v_bias;  // [H*h], [K*h], [K*h]; empty without qkv_bias
  WeightMatrix attn_output;                     // [d, H*h]
  std::vector<float> ffn_norm;                  // [d]
  WeightMatrix ffn_gate, ffn_up;                // [F, d]
  WeightMatrix ffn_down;                        // [d, F]
};

struct SessionWeights {
  WeightMatrix token_embedding;        // [V, d]
  std::vector<float> output_norm;      // [d]
  WeightMatrix output;                 // [V, d]; empty (0 rows) when tied: use token_embedding
  std::vector<float> rope_freqs;       // [h/2] frequency divisors; empty when the model has none
  std::vector<LayerWeights> layers;

  const WeightMatrix& lm_head() const { return output.rows() == 0 ? token_embedding : output; }
  int64_t bytes() const;
};

// Copies the weights out of `model`; `keep_blocks`: see WeightMatrix. Throws
// Error (from dequantisation) on a bad tensor.
SessionWeights load_session_weights(const Model& model, bool keep_blocks);

}  // namespace neuronlens::runtime

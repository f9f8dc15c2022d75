// A model's weights as a Session holds them: the matrices as WeightMatrix
// (read where they lie in the mapped file, or a float32 copy; see
// weight_matrix.h), norms, biases and rope frequencies copied as float32
// (they are small; every norm weight with ModelConfig::norm_weight_offset
// added, so that the forward pass multiplies by it as it stands). The Model is kept, and with it the mapping the matrices
// read. Rows in Hugging Face order as the file stores them
// (GGUF llama q/k rows stay permuted: the rotary embedding follows
// ModelConfig::rope_style instead). Shapes as in model.h.
#pragma once

#include <cstdint>
#include <vector>

#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "runtime/weight_matrix.h"

namespace neuronlens::runtime {

struct LayerWeights {
  std::vector<float> attn_norm;                 // [d]; empty without pre-norms (OLMo 2)
  std::vector<float> attn_q_norm, attn_k_norm;  // [h] or [H*h] / [K*h] (ModelConfig::qk_norm); empty without
  std::vector<float> attn_post_norm;            // [d]; empty without post-norms
  WeightMatrix attn_q, attn_k, attn_v;          // [H*h, d], [K*h, d], [K*h, d]
  std::vector<float> attn_q_bias, attn_k_bias, attn_v_bias;  // [H*h], [K*h], [K*h]; empty without qkv_bias
  WeightMatrix attn_output;                     // [d, H*h]
  std::vector<float> ffn_norm;                  // [d]; empty without pre-norms
  std::vector<float> ffn_post_norm;             // [d]; empty without post-norms
  WeightMatrix ffn_gate, ffn_up;                // [F, d]
  WeightMatrix ffn_down;                        // [d, F]
};

struct SessionWeights {
  Model model;                         // keeps the mapped files alive
  WeightMatrix token_embedding;        // [V, d]
  std::vector<float> output_norm;      // [d]
  WeightMatrix output;                 // [V, d]; empty (0 rows) when tied: use token_embedding
  std::vector<float> rope_freqs;       // [h/2] frequency divisors; empty when the model has none
  std::vector<LayerWeights> layers;

  const WeightMatrix& lm_head() const { return output.rows() == 0 ? token_embedding : output; }
  // Bytes of all weights the forward pass reads, and of those the bytes it
  // owns (copies) rather than reads from the mapped file.
  int64_t bytes() const;
  int64_t copied_bytes() const;
  // Each matrix once: every layer's, the embedding and the LM head.
  std::vector<const WeightMatrix*> matrices() const;
};

// The weights of `model` held as `format` says (see WeightFormat and
// WeightMatrix). Throws Error (from dequantisation) on a bad tensor.
SessionWeights load_session_weights(const Model& model, WeightFormat format);

}  // namespace neuronlens::runtime

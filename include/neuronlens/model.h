// A loaded model: its hyperparameters, vocabulary and a view of every weight,
// from a GGUF file or a Hugging Face folder, behind one description.
//
// Weight shapes (outermost first, see tensor.h), with d = d_model,
// F = d_ffn, V = vocab_size, H = n_heads, K = n_kv_heads, h = head_dim:
//   token_embedding  [V, d]      output (LM head) [V, d] (absent when tied)
//   output_norm      [d]
//   per layer: attn_norm [d], attn_q [H*h, d], attn_k [K*h, d], attn_v [K*h, d],
//   attn_output [d, H*h], (qwen2: attn_q/k/v_bias [H*h]/[K*h]/[K*h]),
//   ffn_norm [d], ffn_gate [F, d], ffn_up [F, d], ffn_down [d, F];
//   q/k norms (qwen3, gemma3: attn_q_norm/attn_k_norm [h], one per head;
//   olmo2: [H*h]/[K*h], over the whole projection), and the output norms of
//   families that normalise a sublayer's output before the residual add
//   (gemma2, gemma3, olmo2: attn_post_norm [d], ffn_post_norm [d]).
// Phi-3 stores q, k, v as one qkv_proj [(H+2K)*h, d] and gate, up as one
// gate_up_proj [2F, d] (gate first); the loader splits them into views of
// the rows above, so that neuron i is row i of ffn_gate and ffn_up alike.
// Row i of ffn_up / ffn_gate is what FFN neuron i reads from the residual
// stream; column i of ffn_down is what it writes back.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "neuronlens/tensor.h"
#include "neuronlens/vocab.h"

namespace neuronlens {

class GgufFile;

enum class Architecture { Llama, Qwen2, Mistral, Qwen3, Gemma2, Gemma3, Olmo2, Phi3 };
std::string_view architecture_name(Architecture arch);
// "llama, qwen2, mistral, ...": for error messages.
std::string supported_architectures();

// How q and k rows are laid out for rotary embeddings. llama.cpp's converter
// permutes the q/k rows of llama-style models so that rotated pairs are
// adjacent (Interleaved); Hugging Face checkpoints and qwen2 GGUFs keep the
// two halves of each head apart (NeoX). Same model, two row orders.
enum class RopeStyle { Interleaved, NeoX };

struct RopeScaling {
  std::string type;                 // "" (none), "llama3", "linear", "longrope"
  double factor = 1.0;
  double low_freq_factor = 1.0;     // llama3
  double high_freq_factor = 4.0;    // llama3
  int64_t original_context = 0;     // llama3, longrope: original_max_position_embeddings
  // LongRoPE (Phi-3 128k, Phi-3.5, Phi-4-mini): rotary frequency j is divided
  // by short_factor[j] while the sequence fits in original_context and by
  // long_factor[j] once it is longer ([rotary_dim/2] each); cos and sin are
  // multiplied by attention_factor (so q.k by its square). As in Hugging
  // Face's Phi-3, the choice is made on the whole sequence's length: see
  // Session::forward for what happens when a sequence grows past it.
  std::vector<double> short_factor;
  std::vector<double> long_factor;
  double attention_factor = 1.0;
  bool is_longrope() const { return type == "longrope"; }
};

// The MLP's activation: SiLU (SwiGLU: silu(gate) * up) or GELU with the tanh
// approximation (GeGLU, Gemma: gelu_pytorch_tanh(gate) * up).
enum class MlpActivation { Silu, GeluTanh };
std::string_view mlp_activation_name(MlpActivation activation);  // "silu", "gelu_tanh"

// RMSNorm of queries and keys before RoPE: none, per head (over head_dim,
// one weight [h] shared by the heads: Qwen3, Gemma 3) or over the whole
// projection (over H*h and K*h, weights of that size: OLMo 2).
enum class QkNorm { None, PerHead, Whole };

struct ModelConfig {
  Architecture arch = Architecture::Llama;
  std::string name;
  int64_t n_layers = 0;
  int64_t d_model = 0;
  int64_t d_ffn = 0;
  int64_t n_heads = 0;
  int64_t n_kv_heads = 0;
  int64_t head_dim = 0;
  int64_t vocab_size = 0;
  int64_t context_length = 0;
  // Sliding-window attention: 0 for none, else a query at position p sees
  // only the keys at p - sliding_window + 1 .. p (Hugging Face's
  // `kv_idx > q_idx - sliding_window`). Mistral 7B v0.1 has 4096.
  int64_t sliding_window = 0;
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeScaling rope_scaling;
  RopeStyle rope_style = RopeStyle::NeoX;
  // Dimensions of each head that rotate: the first rotary_dim (pairs
  // (j, j + rotary_dim/2) in NeoX order); the rest pass through unrotated
  // (Phi-4-mini: partial_rotary_factor 0.75). 0 means the whole head.
  int64_t rotary_dim = 0;
  int64_t rotated_dims() const { return rotary_dim > 0 ? rotary_dim : head_dim; }
  bool tied_embeddings = false;
  bool qkv_bias = false;

  // What a family does differently in the block (set from the architecture
  // table in model/architecture.cpp and the file's keys; the defaults are
  // Llama's). The runtime and the decoder both read these, so that a neuron
  // is decoded through the output path the forward pass runs.
  MlpActivation activation = MlpActivation::Silu;
  QkNorm qk_norm = QkNorm::None;
  // attn_norm / ffn_norm before each sublayer (all but OLMo 2).
  bool pre_norms = true;
  // attn_post_norm / ffn_post_norm on each sublayer's output before it is
  // added to the residual stream (Gemma 2 and 3, OLMo 2).
  bool post_norms = false;
  // Every RMSNorm weight γ is applied as (norm_weight_offset + γ): 1 for a
  // Gemma Hugging Face checkpoint ((1 + γ)); 0 for a Gemma GGUF, whose
  // converter stored 1 + γ already, and for every other family.
  float norm_weight_offset = 0.0f;
  // The token embedding is multiplied by this (Gemma: sqrt(d_model)).
  double embedding_scale = 1.0;
  // Attention scores are q·k times this; 0 means 1/sqrt(head_dim). Gemma:
  // query_pre_attn_scalar^-1/2.
  double attention_scale = 0.0;
  // Soft-capping cap*tanh(x/cap) of the attention scores (after the scale)
  // and of the final logits; 0 for none (Gemma 2 has both).
  double attn_softcap = 0.0;
  double final_softcap = 0.0;
  // Which layers attend through sliding_window: [n_layers], 1 = local
  // (windowed), 0 = global. Empty: every layer is windowed when
  // sliding_window > 0 (Mistral). Gemma 3: five local to one global.
  std::vector<uint8_t> sliding_layers;
  // RoPE base of the local layers (Gemma 3: 10000, global layers
  // rope_theta); 0 means rope_theta.
  double rope_theta_local = 0.0;

  // The window layer `layer` attends through: 0 for the whole prefix.
  int64_t window_of_layer(int64_t layer) const {
    if (sliding_window == 0) return 0;
    if (sliding_layers.empty()) return sliding_window;
    return sliding_layers[static_cast<size_t>(layer)] ? sliding_window : 0;
  }
  bool is_local_layer(int64_t layer) const { return window_of_layer(layer) != 0; }
};

// What the family does in its block, in a line for `info`: "SiLU MLP" or
// "tanh-GELU MLP", q/k norms, post-norms, (1 + γ), the embedding scale, the
// local/global layers with their windows and RoPE bases, the soft-caps.
std::string describe_block(const ModelConfig& config);

// Every weight a model of the supported family can have.
enum class WeightKind {
  TokenEmbedding, OutputNorm, Output, RopeFreqs,
  AttnNorm, AttnQ, AttnK, AttnV, AttnOutput, AttnQBias, AttnKBias, AttnVBias,
  FfnNorm, FfnGate, FfnUp, FfnDown,
  AttnQNorm, AttnKNorm, AttnPostNorm, FfnPostNorm,
};
std::string_view weight_kind_name(WeightKind kind);

// The file format a model was read from.
enum class ModelFormat { Gguf, HuggingFace };

class Model {
 public:
  // Loads a GGUF file, or a Hugging Face folder (config.json +
  // model.safetensors or shards + tokenizer.json). Validates architecture,
  // hyperparameters and the shape of every weight; throws Error naming the
  // file, the tensor or key, what was expected and what was found.
  static Model load(const std::string& path);

  const ModelConfig& config() const { return config_; }
  const Vocabulary& vocab() const { return *vocab_; }
  // The same vocabulary, for a tokenizer that shares it rather than building
  // its own (Tokenizer::from_gguf / from_tokenizer_json with a vocabulary).
  const std::shared_ptr<const Vocabulary>& shared_vocab() const { return vocab_; }
  // The GGUF file the model was read from, parsed once by load() (metadata,
  // tensors, the mapping), alive as long as the model; nullptr for a Hugging
  // Face folder.
  const GgufFile* gguf() const;
  ModelFormat format() const { return format_; }
  const std::string& path() const { return path_; }

  // A weight; `layer` is ignored for global weights. Throws Error if absent.
  const TensorView& weight(WeightKind kind, int64_t layer = -1) const;
  // nullptr when the model lacks it (an optional weight, or Output when tied).
  const TensorView* find_weight(WeightKind kind, int64_t layer = -1) const;
  // The unembedding W_U [V, d]: output.weight, or the token embedding if tied.
  const TensorView& lm_head() const;

  // Every tensor of the file(s), in file order, including any the model
  // does not use.
  const std::vector<const TensorView*>& all_tensors() const { return all_tensors_; }
  // Total bytes of the model files.
  int64_t file_bytes() const { return file_bytes_; }

  // Implementation detail shared by the format loaders.
  struct Storage;

 private:
  std::string path_;
  ModelFormat format_ = ModelFormat::Gguf;
  ModelConfig config_;
  std::shared_ptr<Storage> storage_;          // keeps mappings alive
  std::shared_ptr<const Vocabulary> vocab_;
  std::vector<const TensorView*> global_weights_;              // by WeightKind
  std::vector<std::vector<const TensorView*>> layer_weights_;  // [layer][WeightKind]
  std::vector<const TensorView*> all_tensors_;
  int64_t file_bytes_ = 0;

  friend class ModelBuilder;
};

}  // namespace neuronlens

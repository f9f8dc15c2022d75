#include "model/architecture.h"

#include <cassert>

#include "neuronlens/error.h"

namespace neuronlens {
namespace {

const std::vector<WeightSpec> kWeightSpecs = {
    {WeightKind::TokenEmbedding, false, "token_embd.weight", "model.embed_tokens.weight"},
    {WeightKind::OutputNorm, false, "output_norm.weight", "model.norm.weight"},
    {WeightKind::Output, false, "output.weight", "lm_head.weight"},
    {WeightKind::RopeFreqs, false, "rope_freqs.weight", nullptr},
    {WeightKind::AttnNorm, true, "blk.{}.attn_norm.weight", "model.layers.{}.input_layernorm.weight"},
    {WeightKind::AttnQ, true, "blk.{}.attn_q.weight", "model.layers.{}.self_attn.q_proj.weight"},
    {WeightKind::AttnK, true, "blk.{}.attn_k.weight", "model.layers.{}.self_attn.k_proj.weight"},
    {WeightKind::AttnV, true, "blk.{}.attn_v.weight", "model.layers.{}.self_attn.v_proj.weight"},
    {WeightKind::AttnOutput, true, "blk.{}.attn_output.weight", "model.layers.{}.self_attn.o_proj.weight"},
    {WeightKind::AttnQBias, true, "blk.{}.attn_q.bias", "model.layers.{}.self_attn.q_proj.bias"},
    {WeightKind::AttnKBias, true, "blk.{}.attn_k.bias", "model.layers.{}.self_attn.k_proj.bias"},
    {WeightKind::AttnVBias, true, "blk.{}.attn_v.bias", "model.layers.{}.self_attn.v_proj.bias"},
    {WeightKind::FfnNorm, true, "blk.{}.ffn_norm.weight", "model.layers.{}.post_attention_layernorm.weight"},
    {WeightKind::FfnGate, true, "blk.{}.ffn_gate.weight", "model.layers.{}.mlp.gate_proj.weight"},
    {WeightKind::FfnUp, true, "blk.{}.ffn_up.weight", "model.layers.{}.mlp.up_proj.weight"},
    {WeightKind::FfnDown, true, "blk.{}.ffn_down.weight", "model.layers.{}.mlp.down_proj.weight"},
};

}  // namespace

const std::vector<WeightSpec>& weight_specs() { return kWeightSpecs; }

const WeightSpec& weight_spec(WeightKind kind) {
  const WeightSpec& spec = kWeightSpecs[static_cast<size_t>(kind)];
  assert(spec.kind == kind);
  return spec;
}

std::string_view weight_kind_name(WeightKind kind) {
  switch (kind) {
    case WeightKind::TokenEmbedding: return "token_embedding";
    case WeightKind::OutputNorm: return "output_norm";
    case WeightKind::Output: return "output";
    case WeightKind::RopeFreqs: return "rope_freqs";
    case WeightKind::AttnNorm: return "attn_norm";
    case WeightKind::AttnQ: return "attn_q";
    case WeightKind::AttnK: return "attn_k";
    case WeightKind::AttnV: return "attn_v";
    case WeightKind::AttnOutput: return "attn_output";
    case WeightKind::AttnQBias: return "attn_q_bias";
    case WeightKind::AttnKBias: return "attn_k_bias";
    case WeightKind::AttnVBias: return "attn_v_bias";
    case WeightKind::FfnNorm: return "ffn_norm";
    case WeightKind::FfnGate: return "ffn_gate";
    case WeightKind::FfnUp: return "ffn_up";
    case WeightKind::FfnDown: return "ffn_down";
  }
  return "?";
}

std::string weight_name(WeightKind kind, ModelFormat format, int64_t layer) {
  const WeightSpec& spec = weight_spec(kind);
  const char* pattern = format == ModelFormat::Gguf ? spec.gguf_name : spec.hf_name;
  if (pattern == nullptr) return "";
  std::string name(pattern);
  if (spec.per_layer) {
    size_t at = name.find("{}");
    assert(at != std::string::npos);
    name.replace(at, 2, std::to_string(layer));
  }
  return name;
}

std::string ExpectedShape::to_string() const {
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i) {
    if (i) s += ", ";
    s += labels[i] + "=" + std::to_string(dims[i]);
  }
  return s + "]";
}

ExpectedShape expected_shape(WeightKind kind, const ModelConfig& c) {
  const int64_t q_width = c.n_heads * c.head_dim;
  const int64_t kv_width = c.n_kv_heads * c.head_dim;
  switch (kind) {
    case WeightKind::TokenEmbedding:
    case WeightKind::Output: return {{c.vocab_size, c.d_model}, {"V", "d"}};
    case WeightKind::OutputNorm:
    case WeightKind::AttnNorm:
    case WeightKind::FfnNorm: return {{c.d_model}, {"d"}};
    case WeightKind::RopeFreqs: return {{c.head_dim / 2}, {"head_dim/2"}};
    case WeightKind::AttnQ: return {{q_width, c.d_model}, {"heads*head_dim", "d"}};
    case WeightKind::AttnK:
    case WeightKind::AttnV: return {{kv_width, c.d_model}, {"kv_heads*head_dim", "d"}};
    case WeightKind::AttnOutput: return {{c.d_model, q_width}, {"d", "heads*head_dim"}};
    case WeightKind::AttnQBias: return {{q_width}, {"heads*head_dim"}};
    case WeightKind::AttnKBias:
    case WeightKind::AttnVBias: return {{kv_width}, {"kv_heads*head_dim"}};
    case WeightKind::FfnGate:
    case WeightKind::FfnUp: return {{c.d_ffn, c.d_model}, {"F", "d"}};
    case WeightKind::FfnDown: return {{c.d_model, c.d_ffn}, {"d", "F"}};
  }
  return {};
}

bool weight_required(WeightKind kind, const ModelConfig& config) {
  switch (kind) {
    case WeightKind::Output: return !config.tied_embeddings;
    case WeightKind::RopeFreqs: return false;
    case WeightKind::AttnQBias:
    case WeightKind::AttnKBias:
    case WeightKind::AttnVBias: return config.qkv_bias;
    default: return true;
  }
}

std::string_view architecture_name(Architecture arch) {
  switch (arch) {
    case Architecture::Llama: return "llama";
    case Architecture::Qwen2: return "qwen2";
    case Architecture::Mistral: return "mistral";
  }
  return "?";
}

std::string supported_architectures() { return "llama, qwen2, mistral"; }

Architecture architecture_from_name(const std::string& name, const std::string& where) {
  if (name == "llama") return Architecture::Llama;
  if (name == "qwen2") return Architecture::Qwen2;
  if (name == "mistral") return Architecture::Mistral;
  throw Error(where + ": architecture '" + name + "' is not supported (supported: " + supported_architectures() + ")");
}

void validate_config(const ModelConfig& c, const std::string& where) {
  auto check_range = [&](const char* what, int64_t value, int64_t max) {
    if (value <= 0 || value > max) {
      throw Error(where + ": " + what + " is " + std::to_string(value) + ", expected 1 to " + std::to_string(max));
    }
  };
  check_range("layer count", c.n_layers, 1024);
  check_range("hidden size", c.d_model, 1 << 17);
  check_range("feed-forward size", c.d_ffn, 1 << 20);
  check_range("attention head count", c.n_heads, 1 << 12);
  check_range("key-value head count", c.n_kv_heads, c.n_heads);
  check_range("head dimension", c.head_dim, 1 << 12);
  check_range("vocabulary size", c.vocab_size, 1 << 24);
  check_range("context length", c.context_length, int64_t{1} << 30);
  if (c.sliding_window != 0) check_range("sliding window", c.sliding_window, int64_t{1} << 30);
  if (c.n_heads % c.n_kv_heads != 0) {
    throw Error(where + ": attention head count " + std::to_string(c.n_heads) +
                " is not a multiple of the key-value head count " + std::to_string(c.n_kv_heads));
  }
  if (c.head_dim % 2 != 0) {
    throw Error(where + ": head dimension " + std::to_string(c.head_dim) + " is odd; rotary embeddings need it even");
  }
  if (!(c.rms_norm_eps > 0 && c.rms_norm_eps < 1)) {
    throw Error(where + ": RMS norm epsilon " + std::to_string(c.rms_norm_eps) + " is outside (0, 1)");
  }
  if (!(c.rope_theta > 0)) throw Error(where + ": rope theta " + std::to_string(c.rope_theta) + " is not positive");
}

}  // namespace neuronlens

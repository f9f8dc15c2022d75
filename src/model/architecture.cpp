#include "model/architecture.h"

#include <cassert>
#include <cmath>
#include <cstdio>

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
    {WeightKind::AttnQNorm, true, "blk.{}.attn_q_norm.weight", "model.layers.{}.self_attn.q_norm.weight"},
    {WeightKind::AttnKNorm, true, "blk.{}.attn_k_norm.weight", "model.layers.{}.self_attn.k_norm.weight"},
    {WeightKind::AttnPostNorm, true, "blk.{}.post_attention_norm.weight", nullptr},  // Hugging Face: by family
    {WeightKind::FfnPostNorm, true, "blk.{}.post_ffw_norm.weight", "model.layers.{}.post_feedforward_layernorm.weight"},
};

using enum MlpActivation;
// clang-format off
const ArchitectureTraits kTraits[] = {
//  arch                    name       hf_name        gguf rope              activation qk_norm          bias   pre    post   gemma  pattern
    {Architecture::Llama,   "llama",   nullptr,       RopeStyle::Interleaved, Silu,     QkNorm::None,    false, true,  false, false, 0},
    {Architecture::Qwen2,   "qwen2",   nullptr,       RopeStyle::NeoX,        Silu,     QkNorm::None,    true,  true,  false, false, 0},
    {Architecture::Mistral, "mistral", nullptr,       RopeStyle::Interleaved, Silu,     QkNorm::None,    false, true,  false, false, 0},
    {Architecture::Qwen3,   "qwen3",   nullptr,       RopeStyle::NeoX,        Silu,     QkNorm::PerHead, false, true,  false, false, 0},
    {Architecture::Gemma2,  "gemma2",  nullptr,       RopeStyle::NeoX,        GeluTanh, QkNorm::None,    false, true,  true,  true,  2},
    {Architecture::Gemma3,  "gemma3",  "gemma3_text", RopeStyle::NeoX,        GeluTanh, QkNorm::PerHead, false, true,  true,  true,  6},
    {Architecture::Olmo2,   "olmo2",   nullptr,       RopeStyle::NeoX,        Silu,     QkNorm::Whole,   false, false, true,  false, 0},
    {Architecture::Phi3,    "phi3",    nullptr,       RopeStyle::NeoX,        Silu,     QkNorm::None,    false, true,  false, false, 0, true},
};
// clang-format on

// Families whose block is x += post_norm(sublayer(pre_norm(x))): Hugging
// Face calls the norm on the attention output post_attention_layernorm and
// the MLP's input norm pre_feedforward_layernorm.
bool has_sandwich_names(Architecture arch) { return architecture_traits(arch).post_norms; }

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
    case WeightKind::AttnQNorm: return "attn_q_norm";
    case WeightKind::AttnKNorm: return "attn_k_norm";
    case WeightKind::AttnPostNorm: return "attn_post_norm";
    case WeightKind::FfnPostNorm: return "ffn_post_norm";
  }
  return "?";
}

std::string_view mlp_activation_name(MlpActivation activation) {
  switch (activation) {
    case MlpActivation::Silu: return "silu";
    case MlpActivation::GeluTanh: return "gelu_tanh";
  }
  return "?";
}

const ArchitectureTraits& architecture_traits(Architecture arch) {
  for (const ArchitectureTraits& t : kTraits) {
    if (t.arch == arch) return t;
  }
  assert(false && "every Architecture has a row in kTraits");
  return kTraits[0];
}

std::string weight_name(WeightKind kind, ModelFormat format, int64_t layer, Architecture arch) {
  const WeightSpec& spec = weight_spec(kind);
  const char* pattern = format == ModelFormat::Gguf ? spec.gguf_name : spec.hf_name;
  if (format == ModelFormat::HuggingFace && has_sandwich_names(arch)) {
    if (kind == WeightKind::AttnPostNorm) pattern = "model.layers.{}.post_attention_layernorm.weight";
    if (kind == WeightKind::FfnNorm) pattern = "model.layers.{}.pre_feedforward_layernorm.weight";
  }
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
    case WeightKind::FfnNorm:
    case WeightKind::AttnPostNorm:
    case WeightKind::FfnPostNorm: return {{c.d_model}, {"d"}};
    case WeightKind::AttnQNorm:
      return c.qk_norm == QkNorm::Whole ? ExpectedShape{{q_width}, {"heads*head_dim"}}
                                        : ExpectedShape{{c.head_dim}, {"head_dim"}};
    case WeightKind::AttnKNorm:
      return c.qk_norm == QkNorm::Whole ? ExpectedShape{{kv_width}, {"kv_heads*head_dim"}}
                                        : ExpectedShape{{c.head_dim}, {"head_dim"}};
    case WeightKind::RopeFreqs: return {{c.rotated_dims() / 2}, {"rotary_dim/2"}};
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
    case WeightKind::AttnNorm:
    case WeightKind::FfnNorm: return config.pre_norms;
    case WeightKind::AttnQNorm:
    case WeightKind::AttnKNorm: return config.qk_norm != QkNorm::None;
    case WeightKind::AttnPostNorm:
    case WeightKind::FfnPostNorm: return config.post_norms;
    default: return true;
  }
}

std::string_view architecture_name(Architecture arch) { return architecture_traits(arch).name; }

std::string supported_architectures() {
  std::string names;
  for (const ArchitectureTraits& t : kTraits) {
    if (!names.empty()) names += ", ";
    names += t.name;
    if (t.hf_name) names += std::string(" (") + t.hf_name + ")";
  }
  return names;
}

std::string describe_block(const ModelConfig& c) {
  auto number = [](double x) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", x);
    return std::string(buf);
  };
  std::string s = c.activation == MlpActivation::GeluTanh ? "tanh-GELU MLP" : "SiLU MLP";
  if (c.qk_norm == QkNorm::PerHead) s += ", q/k RMSNorm per head";
  if (c.qk_norm == QkNorm::Whole) s += ", q/k RMSNorm over the projection";
  if (!c.pre_norms) s += ", no pre-norms";
  if (c.post_norms) s += ", post-norms on attention and MLP outputs";
  if (c.norm_weight_offset != 0.0f) s += ", norms (1 + weight)";
  if (c.embedding_scale != 1.0) s += ", embedding x " + number(c.embedding_scale);
  if (c.attention_scale != 0.0) s += ", attention scale " + number(c.attention_scale);
  if (c.sliding_window > 0) {
    int64_t local = 0;
    for (int64_t l = 0; l < c.n_layers; ++l) local += c.is_local_layer(l);
    s += ", " + std::to_string(local) + " local layers (window " + std::to_string(c.sliding_window);
    if (c.rope_theta_local > 0 && c.rope_theta_local != c.rope_theta) s += ", rope theta " + number(c.rope_theta_local);
    s += ") and " + std::to_string(c.n_layers - local) + " global";
  }
  if (c.attn_softcap > 0) s += ", attention soft-cap " + number(c.attn_softcap);
  if (c.final_softcap > 0) s += ", final soft-cap " + number(c.final_softcap);
  if (c.rotated_dims() != c.head_dim) {
    s += ", rotary on " + std::to_string(c.rotated_dims()) + " of " + std::to_string(c.head_dim) + " head dims";
  }
  if (c.rope_scaling.is_longrope()) {
    s += ", LongRoPE (short factors up to " + std::to_string(c.rope_scaling.original_context) +
         " tokens, long beyond; attention factor " + number(c.rope_scaling.attention_factor) + ")";
  }
  return s;
}

std::vector<uint8_t> sliding_layers_from_period(int64_t period, int64_t n_layers) {
  // The layer count is not checked yet (validate_config does, with its own
  // message); an absurd one must not cost its size in time and memory first.
  if (n_layers <= 0 || n_layers > kMaxLayers) return {};
  std::vector<uint8_t> local(static_cast<size_t>(n_layers));
  for (int64_t l = 0; l < n_layers; ++l) local[static_cast<size_t>(l)] = (l + 1) % period != 0;
  return local;
}

Architecture architecture_from_name(const std::string& name, const std::string& where) {
  for (const ArchitectureTraits& t : kTraits) {
    if (name == t.name || (t.hf_name && name == t.hf_name)) return t.arch;
  }
  throw bad_file(where + ": architecture '" + name + "' is not supported (supported: " + supported_architectures() +
                 ")");
}

namespace {

// LongRoPE needs both factor lists, one per rotated frequency, positive and
// finite (a zero would divide a frequency by zero), the original context
// they switch at, and a positive attention factor.
void validate_longrope(const ModelConfig& c, const std::string& where) {
  const RopeScaling& s = c.rope_scaling;
  if (!s.is_longrope()) return;
  const auto half = static_cast<size_t>(c.rotated_dims() / 2);
  for (const auto& [name, factors] : {std::pair{"short", &s.short_factor}, std::pair{"long", &s.long_factor}}) {
    if (factors->size() != half) {
      throw bad_file(where + ": LongRoPE " + name + " factors: " + std::to_string(factors->size()) +
                     " values, expected rotary_dim/2 = " + std::to_string(half));
    }
    for (double f : *factors) {
      if (!(f > 0) || !std::isfinite(f)) {
        throw bad_file(where + ": LongRoPE " + name + " factor " + std::to_string(f) + " is not a positive number");
      }
    }
  }
  if (s.original_context <= 0) {
    throw bad_file(where + ": LongRoPE needs the original context length (original_max_position_embeddings), found " +
                   std::to_string(s.original_context));
  }
  if (!(s.attention_factor > 0) || !std::isfinite(s.attention_factor)) {
    throw bad_file(where + ": LongRoPE attention factor " + std::to_string(s.attention_factor) +
                   " is not a positive number");
  }
}

}  // namespace

void validate_config(const ModelConfig& c, const std::string& where) {
  auto check_range = [&](const char* what, int64_t value, int64_t max) {
    if (value <= 0 || value > max) {
      throw bad_file(where + ": " + what + " is " + std::to_string(value) + ", expected 1 to " + std::to_string(max));
    }
  };
  check_range("layer count", c.n_layers, kMaxLayers);
  check_range("hidden size", c.d_model, 1 << 17);
  check_range("feed-forward size", c.d_ffn, 1 << 20);
  check_range("attention head count", c.n_heads, 1 << 12);
  check_range("key-value head count", c.n_kv_heads, c.n_heads);
  check_range("head dimension", c.head_dim, 1 << 12);
  check_range("vocabulary size", c.vocab_size, 1 << 24);
  check_range("context length", c.context_length, int64_t{1} << 30);
  if (c.sliding_window != 0) check_range("sliding window", c.sliding_window, int64_t{1} << 30);
  if (c.n_heads % c.n_kv_heads != 0) {
    throw bad_file(where + ": attention head count " + std::to_string(c.n_heads) +
                   " is not a multiple of the key-value head count " + std::to_string(c.n_kv_heads));
  }
  if (c.head_dim % 2 != 0) {
    throw bad_file(where + ": head dimension " + std::to_string(c.head_dim) +
                   " is odd; rotary embeddings need it even");
  }
  if (c.rotary_dim < 0 || c.rotary_dim > c.head_dim || c.rotary_dim % 2 != 0) {
    throw bad_file(where + ": rotary dimension " + std::to_string(c.rotary_dim) +
                   " is not an even number from 2 to the head dimension " + std::to_string(c.head_dim));
  }
  validate_longrope(c, where);
  if (!(c.rms_norm_eps > 0 && c.rms_norm_eps < 1)) {
    throw bad_file(where + ": RMS norm epsilon " + std::to_string(c.rms_norm_eps) + " is outside (0, 1)");
  }
  if (!(c.rope_theta > 0)) throw bad_file(where + ": rope theta " + std::to_string(c.rope_theta) + " is not positive");
  if (!(c.rope_theta_local >= 0)) {
    throw bad_file(where + ": local rope theta " + std::to_string(c.rope_theta_local) + " is negative");
  }
  if (c.sliding_window > c.context_length) {
    throw bad_file(where + ": sliding window " + std::to_string(c.sliding_window) +
                   " is larger than the context length " + std::to_string(c.context_length));
  }
  if (!c.sliding_layers.empty() && static_cast<int64_t>(c.sliding_layers.size()) != c.n_layers) {
    throw bad_file(where + ": the sliding-window pattern has " + std::to_string(c.sliding_layers.size()) +
                   " layers, the model " + std::to_string(c.n_layers));
  }
  if (!(c.attention_scale >= 0) || !std::isfinite(c.attention_scale)) {
    throw bad_file(where + ": attention scale " + std::to_string(c.attention_scale) + " is not a positive number");
  }
  if (!(c.embedding_scale > 0) || !std::isfinite(c.embedding_scale)) {
    throw bad_file(where + ": embedding scale " + std::to_string(c.embedding_scale) + " is not a positive number");
  }
}

}  // namespace neuronlens

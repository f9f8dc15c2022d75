// Session: the forward pass over a batch of new tokens, the KV cache and the
// hook registry. The interventions built on hooks are in interventions.cpp.
#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <utility>

#include "backends/cpu/gated_activation.h"
#include "neuronlens/error.h"
#include "neuronlens/runtime.h"
#include "runtime/attention.h"
#include "runtime/kv_cache.h"
#include "runtime/rotary.h"
#include "runtime/session_weights.h"

namespace neuronlens {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Element-wise and row-wise steps run on the threads once a prompt gives them
// this many values; a generated token's are too few to wake them for.
constexpr int64_t kParallelValues = int64_t{1} << 16;

// out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * weight, for x [n, d].
void rms_norm(const float* x, const float* weight, int64_t n, int64_t d, double eps, float* out) {
#pragma omp parallel for schedule(static) if (n * d >= kParallelValues)
  for (int64_t t = 0; t < n; ++t) {
    const float* row = x + t * d;
    double sum_sq = 0.0;
    for (int64_t e = 0; e < d; ++e) sum_sq += static_cast<double>(row[e]) * row[e];
    const auto inv_rms = static_cast<float>(1.0 / std::sqrt(sum_sq / static_cast<double>(d) + eps));
    float* o = out + t * d;
    for (int64_t e = 0; e < d; ++e) o[e] = row[e] * inv_rms * weight[e];
  }
}

// y [n, rows] += bias [rows], unless the model has no bias.
void add_bias(float* y, int64_t n, const std::vector<float>& bias) {
  const auto rows = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < rows; ++r) y[t * rows + r] += bias[sz(r)];
  }
}

void add_into(float* x, const float* y, int64_t count) {
  for (int64_t i = 0; i < count; ++i) x[i] += y[i];
}

// gate [n*F] = act(gate) * up, the neuron activations (SiLU, or GELU with
// PyTorch's tanh approximation), in chunks over the threads for a prompt:
// each value gets the same arithmetic whatever the chunk it falls in.
void gated_activation(MlpActivation activation, float* gate, const float* up, int64_t count) {
  constexpr int64_t kChunk = 4096;
  const int64_t chunks = (count + kChunk - 1) / kChunk;
#pragma omp parallel for schedule(static) if (count >= kParallelValues)
  for (int64_t c = 0; c < chunks; ++c) {
    const int64_t first = c * kChunk, n = std::min(kChunk, count - first);
    cpu::gated_product(activation == MlpActivation::GeluTanh ? cpu::Gate::GeluTanh : cpu::Gate::Silu, gate + first,
                       up + first, n);
  }
}

// RMSNorm of q [n, width] and k over each head ([n * heads, head_dim] rows)
// or over the whole projection, in place; nothing for QkNorm::None.
void qk_norm(QkNorm mode, float* x, int64_t n, int64_t width, int64_t head_dim, const std::vector<float>& weight,
             double eps) {
  if (mode == QkNorm::PerHead) rms_norm(x, weight.data(), n * (width / head_dim), head_dim, eps, x);
  if (mode == QkNorm::Whole) rms_norm(x, weight.data(), n, width, eps, x);
}

void soft_cap(float* x, int64_t count, double cap) {
  const auto c = static_cast<float>(cap);
  for (int64_t i = 0; i < count; ++i) x[i] = c * std::tanh(x[i] / c);
}

// The local layers' rotary embedding. Where they have a base of their own,
// they take it without the global layers' scaling (Gemma 3's sliding layers
// use rope_local_base_freq without the linear factor, as in Hugging Face and
// llama.cpp); elsewhere (Mistral, Phi-3) every layer rotates alike.
ModelConfig local_rope_config(const ModelConfig& c) {
  ModelConfig local = c;
  if (c.rope_theta_local > 0 && c.rope_theta_local != c.rope_theta) {
    local.rope_theta = c.rope_theta_local;
    local.rope_scaling = {};
  }
  return local;
}

}  // namespace

std::string_view hook_point_name(HookPoint point) {
  switch (point) {
    case HookPoint::ResidualIn: return "residual_in";
    case HookPoint::AttnZ: return "attn_z";
    case HookPoint::AttnOut: return "attn_out";
    case HookPoint::MlpGate: return "mlp_gate";
    case HookPoint::MlpUp: return "mlp_up";
    case HookPoint::MlpAct: return "mlp_act";
    case HookPoint::MlpOut: return "mlp_out";
    case HookPoint::ResidualOut: return "residual_out";
    case HookPoint::FinalNorm: return "final_norm";
  }
  return "?";
}

std::string_view weight_format_name(WeightFormat format) {
  switch (format) {
    case WeightFormat::Quantized: return "quantized";
    case WeightFormat::Exact: return "exact";
    case WeightFormat::Float32: return "float32";
  }
  return "?";
}

WeightFormat parse_weight_format(std::string_view name) {
  for (WeightFormat f : {WeightFormat::Quantized, WeightFormat::Exact, WeightFormat::Float32}) {
    if (name == weight_format_name(f)) return f;
  }
  throw bad_input("weight format '" + std::string(name) + "' is not one of quantized, exact, float32");
}

struct Session::Impl {
  struct Entry {
    HookId id;
    Hook fn;
  };

  ModelConfig config;
  runtime::SessionWeights weights;
  runtime::RotaryEmbedding rope;        // global layers
  runtime::RotaryEmbedding local_rope;  // sliding-window layers
  runtime::KvCache cache;
  int64_t position = 0;
  // LongRoPE only: the ids in the cache, to run again on the long factors.
  std::vector<int32_t> history;
  // [(n_layers + 1) * kHookPointCount]; FinalNorm lives in layer slot n_layers.
  std::vector<std::vector<Entry>> hooks;
  struct PatternEntry {
    HookId id;
    std::shared_ptr<AttentionRecord> record;
  };
  std::vector<std::vector<PatternEntry>> pattern_records;  // [n_layers]
  HookId next_id = 1;

  Impl(const ModelConfig& c, runtime::SessionWeights w, KvCacheType kv_cache)
      : config(c), weights(std::move(w)), rope(config, weights.rope_freqs),
        local_rope(local_rope_config(config), std::vector<float>{}),
        cache(kv_cache, c.n_layers, c.n_kv_heads * c.head_dim), hooks(sz((c.n_layers + 1) * kHookPointCount)),
        pattern_records(sz(c.n_layers)) {}

  std::vector<Entry>& slot(int64_t layer, HookPoint point) {
    return hooks[sz(layer * kHookPointCount + static_cast<int64_t>(point))];
  }

  // The one branch an unused point costs.
  void run_hooks(int64_t layer, HookPoint point, float* data, int64_t n, int64_t width, int64_t first) {
    std::vector<Entry>& entries = slot(layer, point);
    if (entries.empty()) [[likely]] return;
    for (Entry& e : entries) e.fn(layer, point, data, n, width, first);
  }

  std::vector<float> forward(const std::vector<int32_t>& tokens, LogitsFor which);
  // One batch at positions position .. position + n - 1, already checked.
  std::vector<float> run(const std::vector<int32_t>& tokens, LogitsFor which);
};

std::vector<float> Session::Impl::forward(const std::vector<int32_t>& tokens, LogitsFor which) {
  const ModelConfig& c = config;
  const auto n = static_cast<int64_t>(tokens.size());
  if (n == 0) throw bad_input("forward: no tokens given");
  if (position + n > c.context_length) {
    throw bad_input("forward: positions " + std::to_string(position) + " .. " + std::to_string(position + n - 1) +
                    " pass the model's context length " + std::to_string(c.context_length));
  }
  for (int32_t id : tokens) {
    if (id < 0 || id >= c.vocab_size) {
      throw bad_input("forward: token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                      std::to_string(c.vocab_size) + ")");
    }
  }

  // LongRoPE picks its factors by the sequence's length (Hugging Face's
  // Phi-3), so the cached tokens were rotated, and their later layers
  // computed, with the short factors. When a sequence first grows past the
  // original context, Hugging Face's generate() drops the cache and runs the
  // whole sequence again; so does this: the result is the batch forward of
  // the whole sequence, and hooks see its earlier positions a second time.
  if (position > 0 && !rope.uses_long_factors(position) && rope.uses_long_factors(position + n)) {
    std::vector<int32_t> sequence = std::move(history);
    sequence.insert(sequence.end(), tokens.begin(), tokens.end());
    history.clear();
    position = 0;
    std::vector<float> logits = run(sequence, which);
    if (which == LogitsFor::LastToken) return logits;
    logits.erase(logits.begin(), logits.end() - n * c.vocab_size);
    return logits;
  }
  return run(tokens, which);
}

std::vector<float> Session::Impl::run(const std::vector<int32_t>& tokens, LogitsFor which) {
  const ModelConfig& c = config;
  const auto n = static_cast<int64_t>(tokens.size());
  const int64_t d = c.d_model, f = c.d_ffn, hd = c.head_dim;
  const int64_t q_width = c.n_heads * hd, kv_width = c.n_kv_heads * hd;
  const int64_t p0 = position;
  if (c.rope_scaling.is_longrope()) history.insert(history.end(), tokens.begin(), tokens.end());
  std::vector<float> x(sz(n * d)), h(sz(n * d)), q(sz(n * q_width)), attn(sz(n * q_width)), out(sz(n * d));
  std::vector<float> gate(sz(n * f)), up(sz(n * f));
  std::vector<float> keys(sz(n * kv_width)), values(sz(n * kv_width));  // the new tokens', before the cache
  std::vector<float> pattern;  // [n_heads, n, p0 + n], only for a layer whose attention is recorded

  for (int64_t t = 0; t < n; ++t) {
    weights.token_embedding.copy_row(tokens[sz(t)], x.data() + t * d);
  }
  if (c.embedding_scale != 1.0) {
    const auto scale = static_cast<float>(c.embedding_scale);
    for (float& e : x) e *= scale;
  }

  for (int64_t layer = 0; layer < c.n_layers; ++layer) {
    const runtime::LayerWeights& w = weights.layers[sz(layer)];
    run_hooks(layer, HookPoint::ResidualIn, x.data(), n, d, p0);

    // Attention. The new keys/values are stored in the cache once normed and
    // rotated.
    const float* attn_in = x.data();
    if (c.pre_norms) {
      rms_norm(x.data(), w.attn_norm.data(), n, d, c.rms_norm_eps, h.data());
      attn_in = h.data();
    }
    float* new_keys = keys.data();
    float* new_values = values.data();
    runtime::multiply_together({{&w.attn_q, attn_in, q.data()},
                                {&w.attn_k, attn_in, new_keys},
                                {&w.attn_v, attn_in, new_values}},
                               n);
    add_bias(q.data(), n, w.attn_q_bias);
    add_bias(new_keys, n, w.attn_k_bias);
    add_bias(new_values, n, w.attn_v_bias);
    qk_norm(c.qk_norm, q.data(), n, q_width, hd, w.attn_q_norm, c.rms_norm_eps);
    qk_norm(c.qk_norm, new_keys, n, kv_width, hd, w.attn_k_norm, c.rms_norm_eps);
    const int64_t window = c.window_of_layer(layer);
    const runtime::RotaryEmbedding& layer_rope = window > 0 ? local_rope : rope;
    layer_rope.apply(q.data(), n, q_width, c.n_heads, p0, p0 + n);
    layer_rope.apply(new_keys, n, kv_width, c.n_kv_heads, p0, p0 + n);
    cache.store(layer, p0, n, new_keys, new_values);
    const std::vector<PatternEntry>& pattern_sinks = pattern_records[sz(layer)];
    if (!pattern_sinks.empty()) pattern.resize(sz(c.n_heads * n * (p0 + n)));
    runtime::causal_attention(q.data(), n, p0, cache.layer(layer), c.n_heads, c.n_kv_heads, hd, attn.data(), window,
                              static_cast<float>(c.attention_scale), static_cast<float>(c.attn_softcap),
                              pattern_sinks.empty() ? nullptr : pattern.data());
    for (const PatternEntry& sink : pattern_sinks) {
      sink.record->n_heads = c.n_heads;
      sink.record->calls.push_back(AttentionPattern{p0, n, p0 + n, pattern});
    }
    run_hooks(layer, HookPoint::AttnZ, attn.data(), n, q_width, p0);
    w.attn_output.multiply(attn.data(), n, out.data());
    if (c.post_norms) rms_norm(out.data(), w.attn_post_norm.data(), n, d, c.rms_norm_eps, out.data());
    run_hooks(layer, HookPoint::AttnOut, out.data(), n, d, p0);
    add_into(x.data(), out.data(), n * d);

    // MLP: down(act(gate(h)) * up(h)); the product overwrites `gate`.
    const float* mlp_in = x.data();
    if (c.pre_norms) {
      rms_norm(x.data(), w.ffn_norm.data(), n, d, c.rms_norm_eps, h.data());
      mlp_in = h.data();
    }
    runtime::multiply_together({{&w.ffn_gate, mlp_in, gate.data()}, {&w.ffn_up, mlp_in, up.data()}}, n);
    run_hooks(layer, HookPoint::MlpGate, gate.data(), n, f, p0);
    run_hooks(layer, HookPoint::MlpUp, up.data(), n, f, p0);
    gated_activation(c.activation, gate.data(), up.data(), n * f);
    run_hooks(layer, HookPoint::MlpAct, gate.data(), n, f, p0);
    w.ffn_down.multiply(gate.data(), n, out.data());
    if (c.post_norms) rms_norm(out.data(), w.ffn_post_norm.data(), n, d, c.rms_norm_eps, out.data());
    run_hooks(layer, HookPoint::MlpOut, out.data(), n, d, p0);
    add_into(x.data(), out.data(), n * d);
    run_hooks(layer, HookPoint::ResidualOut, x.data(), n, d, p0);
  }

  rms_norm(x.data(), weights.output_norm.data(), n, d, c.rms_norm_eps, h.data());
  run_hooks(c.n_layers, HookPoint::FinalNorm, h.data(), n, d, p0);
  position = p0 + n;

  const int64_t v = c.vocab_size;
  const int64_t first_row = which == LogitsFor::LastToken ? n - 1 : 0;
  std::vector<float> logits(sz((n - first_row) * v));
  weights.lm_head().multiply(h.data() + first_row * d, n - first_row, logits.data());
  if (c.final_softcap > 0) soft_cap(logits.data(), static_cast<int64_t>(logits.size()), c.final_softcap);
  return logits;
}

Session::Session(const Model& model, SessionOptions options)
    : impl_(std::make_unique<Impl>(model.config(),
                                   runtime::load_session_weights(model, options.weights),
                                   options.kv_cache)) {}
Session::~Session() = default;
Session::Session(Session&&) noexcept = default;
Session& Session::operator=(Session&&) noexcept = default;

const ModelConfig& Session::config() const { return impl_->config; }
int64_t Session::position() const { return impl_->position; }
void Session::reset() {
  impl_->position = 0;
  impl_->history.clear();
}
int64_t Session::weight_bytes() const { return impl_->weights.bytes(); }
int64_t Session::copied_weight_bytes() const { return impl_->weights.copied_bytes(); }

int64_t Session::cache_bytes() const { return impl_->cache.bytes(); }

std::vector<float> Session::forward(const std::vector<int32_t>& tokens, LogitsFor which) {
  return impl_->forward(tokens, which);
}

HookId Session::add_hook(HookPoint point, int64_t layer, Hook hook) {
  const int64_t n_layers = impl_->config.n_layers;
  if (!hook) throw bad_input("add_hook: empty hook at " + std::string(hook_point_name(point)));
  const HookId id = impl_->next_id++;
  if (point == HookPoint::FinalNorm) {
    if (layer != kEveryLayer && layer != n_layers) {
      throw bad_input("add_hook: final_norm is after the last layer: layer must be " + std::to_string(n_layers) +
                      " or every layer, found " + std::to_string(layer));
    }
    impl_->slot(n_layers, point).push_back({id, std::move(hook)});
    return id;
  }
  if (layer == kEveryLayer) {
    for (int64_t l = 0; l < n_layers; ++l) impl_->slot(l, point).push_back({id, hook});
    return id;
  }
  if (layer < 0 || layer >= n_layers) {
    throw bad_input("add_hook: layer " + std::to_string(layer) + " is outside [0, " + std::to_string(n_layers) + ")");
  }
  impl_->slot(layer, point).push_back({id, std::move(hook)});
  return id;
}

std::shared_ptr<AttentionRecord> Session::record_attention(int64_t layer, HookId* id) {
  const int64_t n_layers = impl_->config.n_layers;
  if (layer < 0 || layer >= n_layers) {
    throw bad_input("record_attention: layer " + std::to_string(layer) + " is outside [0, " +
                    std::to_string(n_layers) + ")");
  }
  auto record = std::make_shared<AttentionRecord>();
  record->n_heads = impl_->config.n_heads;
  const HookId hook_id = impl_->next_id++;
  impl_->pattern_records[sz(layer)].push_back({hook_id, record});
  if (id != nullptr) *id = hook_id;
  return record;
}

void Session::remove_hook(HookId id) {
  bool found = false;
  for (auto& entries : impl_->hooks) {
    const auto removed = std::erase_if(entries, [id](const Impl::Entry& e) { return e.id == id; });
    found = found || removed > 0;
  }
  for (auto& entries : impl_->pattern_records) {
    const auto removed = std::erase_if(entries, [id](const Impl::PatternEntry& e) { return e.id == id; });
    found = found || removed > 0;
  }
  if (!found) throw bad_input("remove_hook: no hook with id " + std::to_string(id));
}

void Session::clear_hooks() {
  for (auto& entries : impl_->hooks) entries.clear();
  for (auto& entries : impl_->pattern_records) entries.clear();
}

}  // namespace neuronlens

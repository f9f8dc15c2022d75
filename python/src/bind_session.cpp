// Session: the forward pass with its KV cache, activations cached by hook
// point, Python functions as hooks, and generation with interventions.
#include <nanobind/nanobind.h>
#include <nanobind/stl/function.h>
#include <nanobind/stl/map.h>
#include <nanobind/stl/optional.h>
#include <nanobind/stl/pair.h>
#include <nanobind/stl/string.h>
#include <nanobind/stl/vector.h>

#include <cstring>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "arrays.h"
#include "bindings.h"
#include "names.h"
#include "neuronlens/runtime.h"
#include "neuronlens/sampling.h"
#include "neuronlens/text_model.h"
#include "py_model.h"
#include "py_session.h"

namespace neuronlens::python {
namespace {

// A hook point and a layer: (point, layer) from Python, or a bare point name
// for every layer (final_norm has one place, layer n_layers).
struct PointAt {
  HookPoint point;
  std::string name;
  int64_t layer;  // kEveryLayer for all
};

PointAt point_at(nb::handle spec, int64_t n_layers) {
  if (nb::isinstance<nb::str>(spec)) {
    const std::string name = nb::cast<std::string>(spec);
    const HookPoint point = hook_point_from_name(name);
    return {point, name, point == HookPoint::FinalNorm ? n_layers : kEveryLayer};
  }
  if (nb::isinstance<nb::tuple>(spec) && nb::len(spec) == 2) {
    const std::string name = nb::cast<std::string>(spec[0]);
    const HookPoint point = hook_point_from_name(name);
    const int64_t layer = nb::cast<int64_t>(spec[1]);
    if (point == HookPoint::FinalNorm) {
      if (layer != n_layers) {
        throw bad_input("final_norm comes after the last layer: its layer is " + std::to_string(n_layers) + ", not " +
                        std::to_string(layer));
      }
    } else {
      check_layer(layer, n_layers);
    }
    return {point, name, layer};
  }
  throw bad_input("a hook point is a name ('mlp_act') or a (name, layer) pair, got " +
                  nb::cast<std::string>(nb::repr(spec)));
}

// "attn_pattern" or ("attn_pattern", layer) in run_with_cache's points.
constexpr std::string_view kAttentionPattern = "attn_pattern";
bool is_attention_pattern(nb::handle spec) {
  if (nb::isinstance<nb::str>(spec)) return nb::cast<std::string>(spec) == kAttentionPattern;
  return nb::isinstance<nb::tuple>(spec) && nb::len(spec) == 2 && nb::isinstance<nb::str>(spec[0]) &&
         nb::cast<std::string>(spec[0]) == kAttentionPattern;
}
std::vector<int64_t> pattern_layers(nb::handle spec, int64_t n_layers) {
  std::vector<int64_t> layers;
  if (nb::isinstance<nb::str>(spec)) {
    for (int64_t l = 0; l < n_layers; ++l) layers.push_back(l);
  } else {
    const int64_t layer = nb::cast<int64_t>(spec[1]);
    check_layer(layer, n_layers);
    layers.push_back(layer);
  }
  return layers;
}

// Removes hooks when it goes out of scope, with the GIL held (a Python hook's
// function object is released with it).
class HookScope {
 public:
  explicit HookScope(Session& session) : session_(session) {}
  ~HookScope() {
    for (HookId id : ids_) session_.remove_hook(id);
  }
  HookScope(const HookScope&) = delete;
  HookScope& operator=(const HookScope&) = delete;
  void add(HookId id) { ids_.push_back(id); }
  void add(const std::vector<HookId>& ids) { ids_.insert(ids_.end(), ids.begin(), ids.end()); }

 private:
  Session& session_;
  std::vector<HookId> ids_;
};

// A Python function as a hook: fn(acts, layer, position) with acts a
// float32 view [n_tokens, width] of the session's buffer, valid during the
// call, that fn may edit in place or replace by returning an array of the
// same shape. A Python exception raised by fn leaves forward() as it is.
Hook python_hook(nb::callable fn, std::string point_name) {
  return [fn = std::move(fn), point_name = std::move(point_name)](int64_t layer, HookPoint, float* data,
                                                                    int64_t n_tokens, int64_t width,
                                                                    int64_t first_position) {
    nb::gil_scoped_acquire acquire;
    const size_t rows = size_t(n_tokens), cols = size_t(width);
    // rv_policy::reference: a view of the buffer, not the copy an array
    // without an owner would otherwise become.
    const nb::object view = nb::cast(NumpyArray<float>(data, {rows, cols}, nb::handle()), nb::rv_policy::reference);
    nb::object result = fn(view, layer, first_position);
    if (result.is_none()) return;
    nb::ndarray<float, nb::ndim<2>, nb::c_contig, nb::device::cpu> replacement;
    const std::string where = "hook at " + point_name + " layer " + std::to_string(layer);
    if (!nb::try_cast(result, replacement, true)) {
      throw bad_input(where + " returned " + nb::cast<std::string>(nb::repr(result.type())) +
                      "; expected None or a float array of shape (" + std::to_string(rows) + ", " +
                      std::to_string(cols) + ")");
    }
    if (replacement.shape(0) != rows || replacement.shape(1) != cols) {
      throw bad_input(where + " returned an array of shape (" + std::to_string(replacement.shape(0)) + ", " +
                      std::to_string(replacement.shape(1)) + "); expected (" + std::to_string(rows) + ", " +
                      std::to_string(cols) + ")");
    }
    std::memmove(data, replacement.data(), rows * cols * sizeof(float));
  };
}

}  // namespace

PySession::PySession(const PyModel& model, const std::string& weights, const std::string& kv_cache)
    : text_(model.shared_text()),
      session_(text_->model, SessionOptions{parse_weight_format(weights), parse_kv_cache_type(kv_cache)}) {}

// The logits [n, V] (or [1, V]) of `tokens`; from an empty cache unless
// keep_cache, when they continue the cached sequence.
NumpyArray<float> PySession::forward(const std::vector<int32_t>& tokens, bool keep_cache, bool last_only) {
  std::vector<float> logits;
  {
    nb::gil_scoped_release release;
    if (!keep_cache) session_.reset();
    logits = session_.forward(tokens, last_only ? LogitsFor::LastToken : LogitsFor::AllTokens);
  }
  const size_t vocab = size_t(text_->model.config().vocab_size);
  const size_t rows = logits.size() / vocab;
  return numpy_from_vector(std::move(logits), {rows, vocab});
}

std::pair<NumpyArray<float>, nb::dict> PySession::run_with_cache(const std::vector<int32_t>& tokens, nb::iterable points,
                                                      bool keep_cache, bool last_only) {
  struct Recorded {
    std::string name;
    int64_t layer;
    std::shared_ptr<ActivationRecord> record;
  };
  std::vector<Recorded> recorded;
  struct RecordedPattern {
    int64_t layer;
    std::shared_ptr<AttentionRecord> record;
  };
  std::vector<RecordedPattern> patterns;
  HookScope scope(session_);
  for (nb::handle spec : points) {
    if (is_attention_pattern(spec)) {
      for (int64_t layer : pattern_layers(spec, n_layers())) {
        HookId id = 0;
        patterns.push_back({layer, session_.record_attention(layer, &id)});
        scope.add(id);
      }
      continue;
    }
    const PointAt at = point_at(spec, n_layers());
    const int64_t first = at.layer == kEveryLayer ? 0 : at.layer;
    const int64_t last = at.layer == kEveryLayer ? n_layers() - 1 : at.layer;
    for (int64_t layer = first; layer <= last; ++layer) {
      HookId id = 0;
      recorded.push_back({at.name, layer, session_.record(at.point, layer, &id)});
      scope.add(id);
    }
  }
  NumpyArray<float> logits = forward(tokens, keep_cache, last_only);
  nb::dict cache;
  for (Recorded& r : recorded) {
    const size_t rows = size_t(r.record->rows()), width = size_t(r.record->width);
    cache[nb::make_tuple(r.name, r.layer)] = numpy_from_vector(std::move(r.record->values), {rows, width});
  }
  for (RecordedPattern& r : patterns) {
    // One forward call: its one pattern, [n_heads, n, n_keys].
    AttentionPattern& p = r.record->calls.at(0);
    cache[nb::make_tuple(std::string(kAttentionPattern), r.layer)] = numpy_from_vector(
        std::move(p.weights), {size_t(r.record->n_heads), size_t(p.n_tokens), size_t(p.n_keys)});
  }
  return {std::move(logits), std::move(cache)};
}

NumpyArray<float> PySession::run_with_hooks(const std::vector<int32_t>& tokens, nb::dict hooks, bool keep_cache,
                                 bool last_only) {
  HookScope scope(session_);
  for (auto [spec, fn] : hooks) {
    if (!PyCallable_Check(fn.ptr())) {
      throw bad_input("the hook for " + nb::cast<std::string>(nb::repr(spec)) + " is not callable");
    }
    const PointAt at = point_at(spec, n_layers());
    scope.add(session_.add_hook(at.point, at.layer, python_hook(nb::borrow<nb::callable>(fn), at.name)));
  }
  return forward(tokens, keep_cache, last_only);
}

std::string PySession::generate(const std::string& prompt, int64_t max_tokens, bool chat, uint64_t seed, double temperature,
                     int64_t top_k, double top_p, const std::map<std::pair<int64_t, int64_t>, float>& clamp,
                     const std::vector<std::pair<int64_t, int64_t>>& ablate,
                     const std::map<std::pair<int64_t, int64_t>, float>& scale_heads,
                     const std::vector<std::pair<int64_t, int64_t>>& ablate_heads,
                     std::optional<nb::callable> on_token) {
  const ModelConfig& c = text_->model.config();
  if (max_tokens < 1 || max_tokens > c.context_length) {
    throw bad_input("max_tokens must be 1 to " + std::to_string(c.context_length) + " (the model's context), got " +
                    std::to_string(max_tokens));
  }
  Interventions interventions;
  for (const auto& [at, value] : clamp) interventions.neurons.push_back({at.first, at.second, value});
  for (const auto& at : ablate) interventions.neurons.push_back({at.first, at.second, std::nullopt});
  for (const NeuronIntervention& iv : interventions.neurons) {
    check_layer(iv.layer, c.n_layers);
    check_neuron(iv.neuron, c.d_ffn);
  }
  for (const auto& [at, factor] : scale_heads) interventions.heads.push_back({at.first, at.second, factor});
  for (const auto& at : ablate_heads) interventions.heads.push_back({at.first, at.second, 0.0f});
  for (const HeadIntervention& iv : interventions.heads) {
    check_layer(iv.layer, c.n_layers);
    check_head(iv.head, c.n_heads);
  }
  SamplingOptions sampling;
  sampling.seed = seed;
  sampling.temperature = temperature;
  sampling.top_k = top_k;
  sampling.top_p = top_p;
  Sampler sampler(sampling);
  const std::vector<int32_t> ids = text_->prompt_tokens(prompt, chat);
  HookScope scope(session_);
  scope.add(apply_interventions(session_, interventions));
  std::string text;
  GenerationResult result;
  {
    nb::gil_scoped_release release;
    session_.reset();
    result = generate_text(session_, *text_, ids, max_tokens, sampler, [&](int32_t, std::string_view piece) {
      text.append(piece);
      if (!on_token) return true;
      nb::gil_scoped_acquire acquire;
      const nb::object more = (*on_token)(nb::str(piece.data(), piece.size()));
      return more.is_none() || nb::cast<bool>(more);
    });
  }
  text += result.unfinished;
  return text;
}


void bind_session(nb::module_& m) {
  nb::class_<PySession>(m, "Session",
                        "The forward pass of a Model with a KV cache and hook points. Made by Model.session().\n\n"
                        "Hook points (each [n_tokens, width] float32): residual_in, attn_z (each head's attention "
                        "output before o_proj, width n_heads * head_dim, head h at columns h*head_dim...), attn_out, "
                        "mlp_gate, mlp_up, mlp_act (the neuron activations act(gate)*up, width d_ffn), mlp_out, "
                        "residual_out, and final_norm (the LM head's input, at layer n_layers). run_with_cache also "
                        "takes attn_pattern: the attention weights [n_heads, n_tokens, n_keys].")
      .def(nb::init<const PyModel&, const std::string&, const std::string&>(), nb::arg("model"),
           nb::arg("weights") = "quantized", nb::arg("kv_cache") = "f32", nb::keep_alive<1, 2>(),
           nb::call_guard<nb::gil_scoped_release>())
      .def_prop_ro("position", &PySession::position, "Tokens in the KV cache: the position the next token gets.")
      .def_prop_ro("weight_bytes", &PySession::weight_bytes,
                   "Bytes of the weights the forward pass reads, in the mapped file or in copies.")
      .def_prop_ro("cache_bytes", &PySession::cache_bytes, "Bytes of the KV cache as allocated now.")
      .def("reset", &PySession::reset, "Forgets the cached tokens.")
      .def("forward", &PySession::forward, nb::arg("tokens"), nb::kw_only(), nb::arg("keep_cache") = false,
           nb::arg("last_only") = false,
           "Logits [n, vocab] float32 of every token (last_only: [1, vocab]). Each call starts from an empty "
           "cache, unless keep_cache=True, when the tokens continue the cached sequence.")
      .def("run_with_cache", &PySession::run_with_cache, nb::arg("tokens"), nb::arg("points"), nb::kw_only(),
           nb::arg("keep_cache") = false, nb::arg("last_only") = false,
           "Runs forward and returns (logits, cache): cache[(point, layer)] is the activations there, "
           "[n, width] float32. `points` lists names (every layer) or (name, layer) pairs. The point "
           "'attn_pattern' gives the softmax attention weights [n_heads, n, n_keys] (n_keys: the cached "
           "positions plus n; row (h, t) sums to 1, 0 where the token cannot see the key).")
      .def("run_with_hooks", &PySession::run_with_hooks, nb::arg("tokens"), nb::arg("hooks"), nb::kw_only(),
           nb::arg("keep_cache") = false, nb::arg("last_only") = false,
           "Runs forward with hooks {(point, layer) or point: fn} and returns the logits. fn(acts, layer, "
           "position) gets a float32 view [n, width] of the session's buffer (valid during the call only; copy "
           "it to keep it) and may edit it in place or return an array of the same shape to replace it; "
           "`position` is the sequence position of row 0. The hooks are removed afterwards, also when fn raises, "
           "and fn's exception propagates.")
      .def("generate", &PySession::generate, nb::arg("prompt"), nb::kw_only(), nb::arg("max_tokens") = 40,
           nb::arg("chat") = false, nb::arg("seed") = 0, nb::arg("temperature") = 0.0, nb::arg("top_k") = 0,
           nb::arg("top_p") = 1.0, nb::arg("clamp") = std::map<std::pair<int64_t, int64_t>, float>{},
           nb::arg("ablate") = std::vector<std::pair<int64_t, int64_t>>{},
           nb::arg("scale_heads") = std::map<std::pair<int64_t, int64_t>, float>{},
           nb::arg("ablate_heads") = std::vector<std::pair<int64_t, int64_t>>{}, nb::arg("on_token") = nb::none(),
           "Generates up to max_tokens after `prompt` (chat: as one user message of the chat template) and "
           "returns the text, as `neuronlens generate` does with the same options: clamp={(layer, neuron): "
           "value} fixes a neuron's activation act(gate)*up, ablate=[(layer, neuron)] zeroes it; "
           "scale_heads={(layer, head): factor} multiplies an attention head's output (attn_z) and "
           "ablate_heads=[(layer, head)] zeroes it. temperature 0 "
           "is greedy; seed makes sampling reproducible. on_token(text) is called as text arrives; return "
           "False to stop.");
}

}  // namespace neuronlens::python

// Interventions on a Session, each one hook: clamp / ablate / scale FFN
// neurons at the post-activation, add a steering vector to the residual
// stream, record activations; and apply_interventions
// (neuronlens/interventions.h), a list of clamps and ablations as such hooks.
#include "neuronlens/interventions.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "neuronlens/error.h"
#include "neuronlens/runtime.h"

namespace neuronlens {
namespace {

void check_layer(const ModelConfig& c, int64_t layer, const char* what) {
  if (layer < 0 || layer >= c.n_layers) {
    throw bad_input(std::string(what) + ": layer " + std::to_string(layer) + " is outside [0, " +
                    std::to_string(c.n_layers) + ")");
  }
}

void check_neurons(const ModelConfig& c, const std::vector<int64_t>& neurons, const char* what) {
  if (neurons.empty()) throw bad_input(std::string(what) + ": no neurons given");
  for (int64_t i : neurons) {
    if (i < 0 || i >= c.d_ffn) {
      throw bad_input(std::string(what) + ": neuron " + std::to_string(i) + " is outside [0, " +
                      std::to_string(c.d_ffn) + ")");
    }
  }
}

void check_finite(float value, const char* what) {
  if (!std::isfinite(value)) throw bad_input(std::string(what) + ": value " + std::to_string(value) + " is not finite");
}

// A hook that maps the chosen columns of the MLP activations [n, F].
template <typename Op>
Hook neuron_hook(std::vector<int64_t> neurons, Op op) {
  return [neurons = std::move(neurons), op](int64_t, HookPoint, float* data, int64_t n, int64_t width, int64_t) {
    for (int64_t t = 0; t < n; ++t) {
      float* row = data + t * width;
      for (int64_t i : neurons) row[i] = op(row[i]);
    }
  };
}

void check_heads(const ModelConfig& c, const std::vector<int64_t>& heads, const char* what) {
  if (heads.empty()) throw bad_input(std::string(what) + ": no heads given");
  for (int64_t h : heads) {
    if (h < 0 || h >= c.n_heads) {
      throw bad_input(std::string(what) + ": head " + std::to_string(h) + " is outside [0, " +
                      std::to_string(c.n_heads) + ")");
    }
  }
}

}  // namespace

HookId Session::scale_heads(int64_t layer, const std::vector<int64_t>& heads, float factor) {
  const ModelConfig& c = config();
  check_layer(c, layer, "scale_heads");
  check_heads(c, heads, "scale_heads");
  check_finite(factor, "scale_heads");
  const int64_t head_dim = c.head_dim;
  // z [n, n_heads * head_dim]: head h is a run of head_dim columns.
  return add_hook(HookPoint::AttnZ, layer,
                  [heads, head_dim, factor](int64_t, HookPoint, float* data, int64_t n, int64_t width, int64_t) {
                    for (int64_t t = 0; t < n; ++t) {
                      for (int64_t h : heads) {
                        float* z = data + t * width + h * head_dim;
                        for (int64_t e = 0; e < head_dim; ++e) z[e] *= factor;
                      }
                    }
                  });
}

HookId Session::ablate_heads(int64_t layer, const std::vector<int64_t>& heads) {
  // Multiplying by 0 would keep a NaN or an infinity; set the values instead.
  const ModelConfig& c = config();
  check_layer(c, layer, "ablate_heads");
  check_heads(c, heads, "ablate_heads");
  const int64_t head_dim = c.head_dim;
  return add_hook(HookPoint::AttnZ, layer,
                  [heads, head_dim](int64_t, HookPoint, float* data, int64_t n, int64_t width, int64_t) {
                    for (int64_t t = 0; t < n; ++t) {
                      for (int64_t h : heads) std::fill_n(data + t * width + h * head_dim, head_dim, 0.0f);
                    }
                  });
}

HookId Session::clamp_neurons(int64_t layer, const std::vector<int64_t>& neurons, float value) {
  check_layer(config(), layer, "clamp");
  check_neurons(config(), neurons, "clamp");
  check_finite(value, "clamp");
  return add_hook(HookPoint::MlpAct, layer, neuron_hook(neurons, [value](float) { return value; }));
}

HookId Session::ablate_neurons(int64_t layer, const std::vector<int64_t>& neurons) {
  check_layer(config(), layer, "ablate");
  check_neurons(config(), neurons, "ablate");
  return add_hook(HookPoint::MlpAct, layer, neuron_hook(neurons, [](float) { return 0.0f; }));
}

HookId Session::scale_neurons(int64_t layer, const std::vector<int64_t>& neurons, float factor) {
  check_layer(config(), layer, "scale");
  check_neurons(config(), neurons, "scale");
  check_finite(factor, "scale");
  return add_hook(HookPoint::MlpAct, layer, neuron_hook(neurons, [factor](float a) { return a * factor; }));
}

HookId Session::add_to_residual(int64_t layer, const std::vector<float>& vector, HookPoint point) {
  const ModelConfig& c = config();
  check_layer(c, layer, "steer");
  if (point != HookPoint::ResidualIn && point != HookPoint::AttnOut && point != HookPoint::MlpOut &&
      point != HookPoint::ResidualOut) {
    throw bad_input("steer: " + std::string(hook_point_name(point)) +
                    " is not a residual-width point (residual_in, attn_out, mlp_out, residual_out)");
  }
  if (static_cast<int64_t>(vector.size()) != c.d_model) {
    throw bad_input("steer: vector has " + std::to_string(vector.size()) +
                    " values, expected d_model = " + std::to_string(c.d_model));
  }
  for (float value : vector) check_finite(value, "steer");
  return add_hook(point, layer, [vector](int64_t, HookPoint, float* data, int64_t n, int64_t width, int64_t) {
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t e = 0; e < width; ++e) data[t * width + e] += vector[static_cast<size_t>(e)];
    }
  });
}

std::shared_ptr<ActivationRecord> Session::record(HookPoint point, int64_t layer, HookId* id) {
  // One record holds one place: rows of several layers would interleave.
  if (point != HookPoint::FinalNorm) check_layer(config(), layer, "record");
  auto rec = std::make_shared<ActivationRecord>();
  const HookId hook_id =
      add_hook(point, layer, [rec](int64_t, HookPoint, float* data, int64_t n, int64_t width, int64_t first) {
        rec->width = width;
        for (int64_t t = 0; t < n; ++t) rec->positions.push_back(first + t);
        rec->values.insert(rec->values.end(), data, data + n * width);
      });
  if (id != nullptr) *id = hook_id;
  return rec;
}

std::vector<HookId> apply_interventions(Session& session, const Interventions& interventions) {
  std::vector<HookId> ids;
  try {
    for (const auto& iv : interventions.neurons) {
      ids.push_back(iv.clamp_value ? session.clamp_neurons(iv.layer, {iv.neuron}, *iv.clamp_value)
                                   : session.ablate_neurons(iv.layer, {iv.neuron}));
    }
    for (const auto& iv : interventions.heads) {
      ids.push_back(iv.factor == 0.0f ? session.ablate_heads(iv.layer, {iv.head})
                                      : session.scale_heads(iv.layer, {iv.head}, iv.factor));
    }
  } catch (...) {
    // All or none: a bad entry must not leave the ones before it in force.
    for (HookId id : ids) session.remove_hook(id);
    throw;
  }
  return ids;
}

}  // namespace neuronlens

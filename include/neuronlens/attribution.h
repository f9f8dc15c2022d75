// Direct logit attribution: one logit at the last prompt position (or the
// difference of two) split into what the embedding, every attention head
// and every MLP neuron wrote into the residual stream. What `neuronlens
// attribute` prints.
//
// The residual stream leaving the last layer is a sum,
//   x = e + Σ_l (attn_l + mlp_l),   attn_l = post_a(Σ_h W_O[:, h] z_h),
//                                   mlp_l  = post_m(Σ_i W_down[:, i] a_i),
// and the logit of token T is cap(W_U[T] · (γ ⊙ x / rms(x))): an RMSNorm has
// no mean subtraction and no bias, so with its scale 1/rms(x) frozen at this
// run's value the logit is linear in x, and every part of x gets its share
// u · part, u = γ ⊙ W_U[T] / rms(x) (W_U[T] − W_U[T2] for a difference).
// Families that norm the block outputs (Gemma's and OLMo 2's post_a, post_m)
// freeze those scales too: a head's part is γ_a ⊙ W_O[:, h] z_h / rms(o_l),
// o_l the layer's attention output before its norm. The parts then add up to
// the logit the model computes, less float rounding; `remainder` reports the
// gap. Gemma 2's final soft-cap is not linear: attribution is of the logit
// before the cap, W_U[T] · (the LM head's input) in this run.
//
// The pass runs with float32 activations in every product
// (WeightFormat::Exact), so the sum is exact for K-quant models too (8-bit
// activations would not be linear in the parts).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/interventions.h"
#include "neuronlens/model.h"

namespace neuronlens {

enum class ComponentKind { Embedding, Head, Neuron };
std::string_view component_kind_name(ComponentKind kind);  // "embedding", "head", "neuron"

struct LogitComponent {
  ComponentKind kind = ComponentKind::Embedding;
  int64_t layer = -1;  // -1 for the embedding
  int64_t index = -1;  // head or neuron; -1 for the embedding
  double contribution = 0;
};

struct LayerContribution {
  double attention = 0;  // Σ over the layer's heads
  double mlp = 0;        // Σ over the layer's neurons
};

struct Attribution {
  int32_t token = 0;
  std::optional<int32_t> versus;  // attribute logit(token) − logit(versus)
  int64_t position = 0;           // the last prompt position, where the logit is read
  // The model's logit (difference) at `position`, before any final soft-cap.
  double logit = 0;
  // 1 / rms(x): the final norm's frozen scale.
  double final_scale = 0;
  double embedding = 0;
  std::vector<LayerContribution> layers;  // [n_layers]
  // Every part: the embedding, then each layer's heads and neurons in order
  // ([1 + n_layers * (n_heads + d_ffn)]).
  std::vector<LogitComponent> components;
  double sum() const;                               // Σ contribution
  double remainder() const { return logit - sum(); }
  // The components with the largest |contribution|, largest first (all of
  // them for n <= 0).
  std::vector<LogitComponent> top(int64_t n, std::optional<ComponentKind> kind = std::nullopt) const;

  // The check the frozen-norm reading needs: the head with the largest
  // |contribution| ablated (HookPoint::AttnZ set to 0), and the logit then.
  struct AblationCheck {
    int64_t layer = 0;
    int64_t head = 0;
    double attributed = 0;  // its contribution above
    double change = 0;      // the model's logit − that with the head ablated (after any soft-cap)
  };
  AblationCheck top_head_check;
};

// Runs `prompt` through a fresh Session of `model` with `interventions` in
// force and attributes the logit of `token` (minus that of `versus`) at the
// last position. Throws Error (bad input) on an empty prompt, a token id
// outside the vocabulary, versus == token, or an intervention outside the
// model.
Attribution attribute_logit(const Model& model, const std::vector<int32_t>& prompt, int32_t token,
                            std::optional<int32_t> versus = std::nullopt, const Interventions& interventions = {});

// An SVG bar chart of the per-layer totals, attention beside MLP, with the
// embedding's part: where in depth the logit is written.
std::string attribution_plot_svg(const Attribution& attribution, const std::string& title);

}  // namespace neuronlens

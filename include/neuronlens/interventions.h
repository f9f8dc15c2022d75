// Interventions as a user writes them and as a Session applies them: clamp
// (fix the MLP post-activation act(gate)*up of one neuron) or ablate (set it
// to 0), parsed from "LAYER:NEURON=VALUE" / "LAYER:NEURON" text; and scale or
// ablate one attention head's output, "LAYER:HEAD=FACTOR" / "LAYER:HEAD".
//
// The parsers' messages name the text and what is wrong with it, never an
// option or a request field: a front end puts its own name in front
// ("--clamp: ", "clamps[2]: ").
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "neuronlens/model.h"
#include "neuronlens/runtime.h"

namespace neuronlens {

// One FFN neuron: column `neuron` of layer `layer`'s post-activations [n, F].
struct FfnNeuron {
  int64_t layer = 0;
  int64_t neuron = 0;
};

// Clamp or ablate one neuron.
struct NeuronIntervention {
  int64_t layer = 0;
  int64_t neuron = 0;
  std::optional<float> clamp_value;  // nullopt: ablate
};

// Scale one attention head's output z (HookPoint::AttnZ, before o_proj) by
// `factor`; 0 ablates it.
struct HeadIntervention {
  int64_t layer = 0;
  int64_t head = 0;
  float factor = 0.0f;
};

// What the commands that run a model apply: neurons and heads.
struct Interventions {
  std::vector<NeuronIntervention> neurons;
  std::vector<HeadIntervention> heads;
  Interventions() = default;
  // Implicit: a list of neuron interventions is an Interventions.
  Interventions(std::vector<NeuronIntervention> n, std::vector<HeadIntervention> h = {})  // NOLINT
      : neurons(std::move(n)), heads(std::move(h)) {}
  Interventions(std::initializer_list<NeuronIntervention> n) : neurons(n) {}  // NOLINT
  bool empty() const { return neurons.empty() && heads.empty(); }
};

// Adds the interventions to the session as hooks (neurons on the MLP
// post-activation, heads on attn_z), in order, all or none: a bad entry
// throws Error and leaves no hook of this call behind. Returns their ids
// (one each).
std::vector<HookId> apply_interventions(Session& session, const Interventions& interventions);

// "LAYER:NEURON" (e.g. "5:123"), both checked against the model. Throws
// Error, e.g. "'5' is not LAYER:NEURON, e.g. 5:123" or
// "'40:1': layer 40 is out of range (the model has layers 0 to 29)".
FfnNeuron parse_ffn_neuron(const std::string& text, const ModelConfig& config);
// "LAYER:NEURON=VALUE" (e.g. "5:123=10"), VALUE a finite number. Throws
// Error, e.g. "'5:123' is not LAYER:NEURON=VALUE, e.g. 5:123=10".
NeuronIntervention parse_clamp(const std::string& text, const ModelConfig& config);
// "LAYER:NEURON": the ablation of that neuron. Throws Error as
// parse_ffn_neuron.
NeuronIntervention parse_ablation(const std::string& text, const ModelConfig& config);

// One attention head: "LAYER:HEAD", both checked against the model (query
// heads: 0 to n_heads - 1).
struct AttentionHead {
  int64_t layer = 0;
  int64_t head = 0;
};
// Throws Error, e.g. "'3' is not LAYER:HEAD, e.g. 5:2" or "'5:40': head 40
// is out of range (layers have heads 0 to 8)".
AttentionHead parse_attention_head(const std::string& text, const ModelConfig& config);
// "LAYER:HEAD": that head ablated (factor 0).
HeadIntervention parse_head_ablation(const std::string& text, const ModelConfig& config);
// "LAYER:HEAD=FACTOR", FACTOR a finite number. Throws Error, e.g. "'5:2' is
// not LAYER:HEAD=FACTOR, e.g. 5:2=0.5".
HeadIntervention parse_head_scale(const std::string& text, const ModelConfig& config);

}  // namespace neuronlens

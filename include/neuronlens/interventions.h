// Neuron interventions as a user writes them and as a Session applies them:
// clamp (fix the MLP post-activation act(gate)*up of one neuron) or ablate
// (set it to 0), parsed from "LAYER:NEURON=VALUE" / "LAYER:NEURON" text.
//
// The parsers' messages name the text and what is wrong with it, never an
// option or a request field: a front end puts its own name in front
// ("--clamp: ", "clamps[2]: ").
#pragma once

#include <cstdint>
#include <optional>
#include <string>
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

// Adds the interventions to the session as hooks on the MLP post-activation,
// in order; returns their ids (one each).
std::vector<HookId> apply_interventions(Session& session, const std::vector<NeuronIntervention>& interventions);

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

}  // namespace neuronlens

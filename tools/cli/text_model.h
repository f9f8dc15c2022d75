// The --clamp / --ablate options of the commands that run the model on text
// (generate, probe, lens); the model on text itself is in the core library
// (neuronlens/text_model.h).
#pragma once

#include <cmath>
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/text_model.h"

namespace neuronlens::cli {

// Parses "L:I=VALUE" (clamp) or "L:I" (ablate), checked against the model.
inline NeuronIntervention parse_intervention(const std::string& text, bool is_clamp, const ModelConfig& config) {
  const std::string option = is_clamp ? "--clamp" : "--ablate";
  const std::string form = is_clamp ? "LAYER:NEURON=VALUE, e.g. 5:123=10" : "LAYER:NEURON, e.g. 5:123";
  const size_t colon = text.find(':');
  const size_t equals = text.find('=');
  if (colon == std::string::npos || (is_clamp && (equals == std::string::npos || equals < colon)) ||
      (!is_clamp && equals != std::string::npos)) {
    throw Error(option + ": '" + text + "' is not " + form);
  }
  NeuronIntervention iv;
  const std::string what = option + " '" + text + "'";
  iv.layer = parse_nonnegative_integer(text.substr(0, colon), what + " layer");
  iv.neuron = parse_nonnegative_integer(is_clamp ? text.substr(colon + 1, equals - colon - 1) : text.substr(colon + 1),
                                        what + " neuron");
  if (iv.layer >= config.n_layers) {
    throw Error(what + ": layer " + std::to_string(iv.layer) + " is out of range (the model has layers 0 to " +
                std::to_string(config.n_layers - 1) + ")");
  }
  if (iv.neuron >= config.d_ffn) {
    throw Error(what + ": neuron " + std::to_string(iv.neuron) + " is out of range (layers have neurons 0 to " +
                std::to_string(config.d_ffn - 1) + ")");
  }
  if (is_clamp) {
    const std::string value = text.substr(equals + 1);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (value.empty() || used != value.size() || !std::isfinite(v)) {
      throw Error(what + ": value '" + value + "' is not a finite number");
    }
    iv.clamp_value = static_cast<float>(v);
  }
  return iv;
}

inline std::vector<NeuronIntervention> parse_interventions(const std::vector<std::string>& clamps,
                                                           const std::vector<std::string>& ablations,
                                                           const ModelConfig& config) {
  std::vector<NeuronIntervention> out;
  for (const auto& c : clamps) out.push_back(parse_intervention(c, true, config));
  for (const auto& a : ablations) out.push_back(parse_intervention(a, false, config));
  return out;
}

}  // namespace neuronlens::cli

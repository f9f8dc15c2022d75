// The --clamp / --ablate options of the commands that run the model on text
// (generate, probe); the model on text and the parsers themselves are in the
// core library (neuronlens/text_model.h, neuronlens/interventions.h).
#pragma once

#include <string>
#include <vector>

#include "neuronlens/interventions.h"
#include "neuronlens/text_model.h"
#include "option_error.h"

namespace neuronlens::cli {

// --clamp L:I=VALUE and --ablate L:I, checked against the model; a bad one
// throws Error named by its option ("--clamp: '0:1' is not ...").
inline std::vector<NeuronIntervention> parse_interventions(const std::vector<std::string>& clamps,
                                                           const std::vector<std::string>& ablations,
                                                           const ModelConfig& config) {
  std::vector<NeuronIntervention> out;
  for (const auto& c : clamps) out.push_back(for_option("--clamp", [&] { return parse_clamp(c, config); }));
  for (const auto& a : ablations) out.push_back(for_option("--ablate", [&] { return parse_ablation(a, config); }));
  return out;
}

}  // namespace neuronlens::cli

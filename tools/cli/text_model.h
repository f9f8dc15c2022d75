// The intervention options of the commands that run the model on text
// (generate, probe, lens): --clamp / --ablate on neurons, --ablate-head /
// --scale-head on attention heads. The model on text and the parsers
// themselves are in the core library (neuronlens/text_model.h,
// neuronlens/interventions.h).
#pragma once

#include <CLI/CLI.hpp>
#include <string>
#include <vector>

#include "neuronlens/interventions.h"
#include "neuronlens/text_model.h"
#include "option_error.h"

namespace neuronlens::cli {

struct InterventionOptions {
  std::vector<std::string> clamps;          // "L:I=VALUE"
  std::vector<std::string> ablations;       // "L:I"
  std::vector<std::string> head_ablations;  // "L:H"
  std::vector<std::string> head_scales;     // "L:H=FACTOR"

  // As a reader sees them: "clamp 5:12=10", "ablate-head 3:1", ...
  std::vector<std::string> described() const {
    std::vector<std::string> out;
    for (const auto& c : clamps) out.push_back("clamp " + c);
    for (const auto& a : ablations) out.push_back("ablate " + a);
    for (const auto& h : head_ablations) out.push_back("ablate-head " + h);
    for (const auto& h : head_scales) out.push_back("scale-head " + h);
    return out;
  }
};

inline void add_intervention_options(CLI::App* cmd, InterventionOptions& opt) {
  cmd->add_option("--clamp", opt.clamps, "Fix neuron activation: LAYER:NEURON=VALUE (repeatable)");
  cmd->add_option("--ablate", opt.ablations, "Zero neuron activation: LAYER:NEURON (repeatable)");
  cmd->add_option("--ablate-head", opt.head_ablations,
                  "Zero an attention head's output (before o_proj): LAYER:HEAD (repeatable)");
  cmd->add_option("--scale-head", opt.head_scales,
                  "Multiply an attention head's output (before o_proj): LAYER:HEAD=FACTOR (repeatable)");
}

// --weights: how a Session holds the matrices (WeightFormat; parsed with
// parse_weight_format).
inline void add_weights_option(CLI::App* cmd, std::string& weights) {
  cmd->add_option("--weights", weights,
                  "quantized (blocks in place, 8-bit activations for every quantised type, as llama.cpp), exact "
                  "(blocks in place, float32 activations throughout: float32's logits, slower per token) or "
                  "float32 (a float32 copy of every matrix)")
      ->capture_default_str();
}

// Each checked against the model; a bad one throws Error named by its option
// ("--clamp: '0:1' is not ...").
inline Interventions parse_interventions(const InterventionOptions& opt, const ModelConfig& config) {
  Interventions out;
  for (const auto& c : opt.clamps) out.neurons.push_back(for_option("--clamp", [&] { return parse_clamp(c, config); }));
  for (const auto& a : opt.ablations) {
    out.neurons.push_back(for_option("--ablate", [&] { return parse_ablation(a, config); }));
  }
  for (const auto& h : opt.head_ablations) {
    out.heads.push_back(for_option("--ablate-head", [&] { return parse_head_ablation(h, config); }));
  }
  for (const auto& h : opt.head_scales) {
    out.heads.push_back(for_option("--scale-head", [&] { return parse_head_scale(h, config); }));
  }
  return out;
}

}  // namespace neuronlens::cli

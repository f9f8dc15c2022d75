// Does a neuron's weight decode say what it does? For every neuron with a
// record (neuronlens/neuron_record.h) and a map of `kind` (down by default:
// what the neuron writes when it fires positively), the share of its top
// positive contexts whose actual next token is among its decoded top-k,
// against the chance that a random recorded position's next token is: the
// summed corpus frequency of those top-k tokens. The paper's premise
// (arXiv 2501.02688) at scale: a layer whose rate stands well above chance
// writes what its decode says.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/neuron.h"

namespace neuronlens {

struct NeuronContextAgreement {
  int64_t layer = 0;
  int64_t index = 0;
  int64_t contexts = 0;  // top positive contexts with a next token in their chunk
  int64_t hits = 0;      // of which the next token is in the decoded top-k
  double rate = 0;       // hits / contexts
  double chance = 0;     // summed corpus frequency of the top-k tokens
};

struct LayerContextAgreement {
  int64_t layer = 0;
  int64_t neurons = 0;      // with at least one context
  double mean_rate = 0;
  double mean_chance = 0;
  double above_chance = 0;  // share of neurons whose rate beats their chance
};

struct ContextAgreementReport {
  VectorKind kind = VectorKind::Down;
  int top_k = 0;
  std::vector<LayerContextAgreement> layers;   // the layers both mapped and recorded
  std::vector<NeuronContextAgreement> neurons; // every neuron of those layers
};

// Throws Error (bad input) when the atlas has no record or no mapped layer
// of `kind`.
ContextAgreementReport record_agreement(const Atlas& atlas, VectorKind kind = VectorKind::Down);

// The report as an SVG line plot: mean rate and mean chance per layer.
std::string agreement_svg(const ContextAgreementReport& report, const std::string& title);

}  // namespace neuronlens

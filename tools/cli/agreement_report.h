// The agreement table (neuronlens/record_agreement.h) as `record` and `map`
// print it once an atlas holds both a record and a map of the down kind.
#pragma once

#include <cstdio>
#include <optional>
#include <string>

#include "neuronlens/error.h"
#include "neuronlens/record_agreement.h"

namespace neuronlens::cli {

// Prints the per-layer table; says why not when the atlas lacks a record or
// the kind's map. Returns the report when there is one.
inline std::optional<ContextAgreementReport> print_agreement(const Atlas& atlas, VectorKind kind = VectorKind::Down) {
  if (!atlas.record_info()) return std::nullopt;
  bool mapped = false;
  for (const auto& [k, layer] : atlas.layers_done()) mapped = mapped || k == kind;
  if (!mapped) {
    std::printf("\nagreement: map the %s kind into this atlas (`neuronlens map MODEL -o %s --kinds %s`) to see how "
                "often a neuron's top contexts are followed by its decoded tokens\n",
                std::string(vector_kind_name(kind)).c_str(), atlas.path().c_str(),
                std::string(vector_kind_name(kind)).c_str());
    return std::nullopt;
  }
  ContextAgreementReport report = record_agreement(atlas, kind);
  std::printf("\nagreement per layer: how often the token after a neuron's top positive contexts is in its %s "
              "decode's top %d, against chance (the corpus frequency of those tokens)\n",
              std::string(vector_kind_name(kind)).c_str(), report.top_k);
  std::printf("  %5s %8s %8s %8s %8s %12s\n", "layer", "neurons", "rate", "chance", "lift", "above chance");
  for (const LayerContextAgreement& l : report.layers) {
    std::printf("  %5lld %8lld %7.2f%% %7.2f%% %7.1fx %11.1f%%\n", static_cast<long long>(l.layer),
                static_cast<long long>(l.neurons), l.mean_rate * 100, l.mean_chance * 100,
                l.mean_chance > 0 ? l.mean_rate / l.mean_chance : 0.0, l.above_chance * 100);
  }
  return report;
}

}  // namespace neuronlens::cli

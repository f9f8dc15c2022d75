// Comparing two neuron maps of the same shape (e.g. a base model and its
// instruct fine-tune), neuron by neuron.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "neuronlens/atlas.h"

namespace neuronlens {

struct LayerAgreement {
  VectorKind kind;
  int64_t layer;
  int64_t neurons;
  double top1_same;     // share of neurons whose top-1 token is the same
  double mean_overlap;  // mean |topk_A ∩ topk_B| / k
};

struct ChangedNeuron {
  VectorKind kind;
  int64_t layer;
  int64_t index;
  double overlap;  // |topk_A ∩ topk_B| / k
  std::vector<int32_t> top_a, top_b;
};

struct KindAgreement {
  VectorKind kind;
  int64_t neurons;
  double top1_same;
  double mean_overlap;
};

struct Comparison {
  std::vector<LayerAgreement> layers;   // every (kind, layer) mapped in both
  std::vector<KindAgreement> kinds;     // totals per kind
  std::vector<ChangedNeuron> most_changed;
};

// Throws Error if the atlases differ in shape (layers, FFN width, vocabulary,
// top-k) or share no mapped (kind, layer).
Comparison compare_atlases(const Atlas& a, const Atlas& b, int most_changed_limit);

// An SVG line plot of top-1 agreement by layer, one line per kind.
std::string agreement_plot_svg(const Comparison& comparison, const std::string& title);

}  // namespace neuronlens

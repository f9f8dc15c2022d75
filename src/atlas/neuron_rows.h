// Reading neuron rows, shared by Atlas::neuron and the paged listings
// (atlas_pages.cpp): one place that knows the columns' order.
#pragma once

#include <cstdint>

#include "atlas/sqlite_statement.h"
#include "neuronlens/atlas.h"

namespace neuronlens::atlas_rows {

// The columns neuron_from_row reads, to follow with FROM/WHERE/ORDER BY.
inline constexpr const char* kNeuronColumns =
    "SELECT neuron, logsumexp, entropy, topk_mass, top1_prob FROM neurons ";
// A neuron's first `?4` top tokens; binds (kind, layer, neuron, count).
inline constexpr const char* kTopTokensQuery =
    "SELECT token, logit, prob FROM neuron_tokens WHERE kind = ? AND layer = ? AND neuron = ? AND rank < ? "
    "ORDER BY rank";

inline AtlasNeuron neuron_from_row(const sql::Statement& row, VectorKind kind, int64_t layer) {
  AtlasNeuron n;
  n.kind = kind;
  n.layer = layer;
  n.index = row.int64(0);
  n.logsumexp = row.real(1);
  n.entropy = row.real(2);
  n.topk_mass = row.real(3);
  n.top1_prob = row.real(4);
  return n;
}

// Appends the neuron's first `count` top tokens, read with `query` (a
// statement of kTopTokensQuery, reset afterwards for the next neuron).
inline void read_top_tokens(sql::Statement& query, AtlasNeuron& n, int64_t count) {
  query.bind(1, static_cast<int64_t>(n.kind)).bind(2, n.layer).bind(3, n.index).bind(4, count);
  while (query.step()) {
    n.top_ids.push_back(static_cast<int32_t>(query.int64(0)));
    n.top_logits.push_back(query.real(1));
    n.top_probs.push_back(query.real(2));
  }
  query.reset();
}

}  // namespace neuronlens::atlas_rows

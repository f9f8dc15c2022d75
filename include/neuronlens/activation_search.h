// `find --by activation`: the neurons that fire on a concept's tokens in a
// recorded corpus (neuronlens/neuron_record.h), beside the weight-decode
// ranking of neuronlens/concept_search.h. The corpus chunks holding a
// concept token (at a recorded offset, >= 1) are run again, each up to its
// last such token, and every neuron's activation at those tokens is
// averaged. Neurons rank by that mean in units of their own corpus
// statistics, z = (mean - corpus mean) / corpus std: a raw mean ranks by
// scale rather than by concept (on SmolLM2 the top raw mean on "dog" is a
// neuron that averages 35 on every token).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/concept_search.h"
#include "neuronlens/model.h"

namespace neuronlens {

struct ActivationHit {
  int64_t layer = 0;
  int64_t index = 0;
  double mean = 0;         // mean activation at the concept's tokens
  double corpus_mean = 0;  // over the whole recorded corpus
  double corpus_std = 0;
  double z = 0;            // (mean - corpus_mean) / corpus_std; 0 where std is 0
};

struct ActivationSearch {
  int64_t positions = 0;   // concept tokens found in the corpus
  int64_t chunks_run = 0;  // chunks run again to read them
  std::vector<ActivationHit> hits;  // best first: highest z, then mean
};

// `layers` empty: all. `limit` hits are kept. Throws Error (bad input) when
// the atlas holds no record, or no concept token occurs in the corpus.
ActivationSearch find_by_activation(const Model& model, const Atlas& atlas, const ConceptTokens& concept_tokens,
                                    const std::vector<int64_t>& layers, int limit,
                                    const std::function<void(int64_t done, int64_t total)>& on_progress = {});

}  // namespace neuronlens

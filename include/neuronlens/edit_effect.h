// What a weight edit did: the concept's probability after concept prompts,
// and how far the next-token distribution moved on neutral text, measured
// by running the model before and the model after the edit.
#pragma once

#include <cstdint>
#include <vector>

#include "neuronlens/model.h"

namespace neuronlens {

struct EditEffect {
  // Per prompt: sum over the concept's tokens of p(token) after the prompt.
  std::vector<double> concept_before;
  std::vector<double> concept_after;
  // Per neutral-text position: KL(p_before || p_after) of the next-token
  // distributions, in nats.
  std::vector<double> kl;
  double kl_mean = 0;
  double kl_median = 0;
  double kl_max = 0;
};

// Runs `prompts` and `neutral` (token ids, BOS included where the model
// wants one) through both models. `before` and `after` must share the
// architecture and vocabulary. Throws Error for an empty prompt or ids out of
// range (as Session::forward).
EditEffect measure_edit_effect(const Model& before, const Model& after, const std::vector<int32_t>& concept_ids,
                               const std::vector<std::vector<int32_t>>& prompts, const std::vector<int32_t>& neutral);

}  // namespace neuronlens

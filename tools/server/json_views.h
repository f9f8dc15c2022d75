// The JSON shapes docs/api.md defines for tokens and neurons.
#pragma once

#include <cstdint>
#include <nlohmann/json.hpp>
#include <optional>

#include "neuronlens/atlas.h"
#include "server_context.h"

namespace neuronlens::server {

// {"id", "text"} plus "logit" and "prob" when given.
nlohmann::json token_json(const ServerContext& context, int32_t id, std::optional<double> logit = std::nullopt,
                          std::optional<double> prob = std::nullopt);

// The neuron summary: layer, kind, index, entropy, logsumexp, topk_mass,
// top1_prob and its first `show_top` top tokens (all stored when negative).
nlohmann::json neuron_summary_json(const ServerContext& context, const AtlasNeuron& neuron, int show_top);

// A page of a list: {"total", "offset", "limit", "items"}.
nlohmann::json page_json(int64_t total, int64_t offset, int64_t limit, nlohmann::json items);

}  // namespace neuronlens::server

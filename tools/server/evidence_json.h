// The JSON of a neuron's recorded evidence (neuronlens/neuron_record.h), one
// format for `neuronlens show --json` and GET /api/neurons/... (docs/api.md).
#pragma once

#include <nlohmann/json.hpp>

#include "neuronlens/atlas.h"
#include "neuronlens/neuron_record.h"

namespace neuronlens::server {

// {"stats": {mean, std, max_abs, density}, "positive": [...], "negative":
// [...]}, each context {"activation", "chunk", "offset", "tokens": [{"id",
// "text", "activation", "fired"}]}; at most `contexts` per sign (< 0: all).
nlohmann::json evidence_json(const Atlas& atlas, const NeuronEvidence& evidence, int64_t contexts = -1);

// An atlas's record: corpus files, tokens, options; null without one.
nlohmann::json record_info_json(const std::optional<RecordInfo>& info);

}  // namespace neuronlens::server

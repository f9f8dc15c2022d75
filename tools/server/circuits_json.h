// The JSON of an attribution and of a patching run, one format for
// `neuronlens attribute/patch --json` and POST /api/attribute, /api/patch
// (docs/circuits.md, docs/api.md).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "neuronlens/attribution.h"
#include "neuronlens/patching.h"

namespace neuronlens::server {

using TokenTextOf = std::function<std::string(int32_t)>;
// A component's decoded tokens (from an atlas), or empty.
using ComponentTokens = std::function<std::vector<std::string>(const LogitComponent&)>;

// logit, sum, remainder, final_scale, embedding, layers, the `top` largest
// components (all for top <= 0) and top_head_check.
nlohmann::json attribution_json(const Attribution& a, int64_t top, const TokenTextOf& text_of,
                                const ComponentTokens& tokens_of = nullptr);

// clean, corrupt, layers, and the residual, mlp and heads cells.
nlohmann::json patching_json(const PatchingResult& r, const std::vector<int32_t>& clean,
                             const std::vector<int32_t>& corrupt, const TokenTextOf& text_of);

}  // namespace neuronlens::server

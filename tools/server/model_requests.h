// What the endpoints that run the model share (routes_model.cpp,
// routes_circuits.cpp): one request at a time, interventions and single
// tokens read from a JSON body.
#pragma once

#include <mutex>
#include <nlohmann/json.hpp>
#include <string>

#include "neuronlens/interventions.h"
#include "neuronlens/text_model.h"
#include "server_context.h"

namespace neuronlens::server {

// The model's lock, or a 429 when another model request holds it.
std::unique_lock<std::mutex> lock_model_or_refuse(ServerContext& context);
// "clamps", "ablate" and "heads" of a body, each entry checked (400 naming it).
Interventions read_interventions(const nlohmann::json& body, const ModelConfig& config);
// The id of `text` as exactly one token; 400 naming `where` otherwise.
int32_t read_single_token(const TextModel& tm, const std::string& text, const std::string& where);

}  // namespace neuronlens::server

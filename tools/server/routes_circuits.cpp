// The circuit analyses over HTTP, as `neuronlens attribute` and `patch`
// compute them (docs/circuits.md): direct logit attribution of a prompt's
// next token, and activation patching of a clean prompt into a corrupted
// one. Both run the model, one request at a time (429 when it is busy).
#include <optional>
#include <string>
#include <vector>

#include "circuits_json.h"
#include "json_reply.h"
#include "model_requests.h"
#include "request_error.h"
#include "request_params.h"
#include "routes.h"

namespace neuronlens::server {
namespace {

struct LogitTargetTokens {
  int32_t token = 0;
  std::optional<int32_t> versus;
};

// A patching request costs 2 · layers · tokens + layers · heads forward
// passes; past this many it must name fewer layers.
constexpr int64_t kMostPatchPasses = 4096;
constexpr int64_t kMostAttributionParts = 1000;

// "token" and the optional "vs" of a body, each one token.
LogitTargetTokens read_target(const TextModel& tm, const nlohmann::json& body) {
  LogitTargetTokens t;
  t.token = read_single_token(tm, json_string(body, "token", 1, kMaxQueryBytes), "token");
  if (body.contains("vs")) t.versus = read_single_token(tm, json_string(body, "vs", 1, kMaxQueryBytes), "vs");
  if (t.versus && *t.versus == t.token) bad_request("vs: the same token as token");
  return t;
}

void attribute(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  const TextModel& tm = context.require_model();
  const nlohmann::json body = parse_json_object(request.body);
  const std::string text = json_string(body, "prompt", 1, kMaxPromptBytes);
  const bool chat = json_bool(body, "chat", false);
  const int64_t top = json_integer(body, "top", 20, 1, kMostAttributionParts);
  const LogitTargetTokens target = read_target(tm, body);
  const Interventions interventions = read_interventions(body, tm.model.config());
  const std::vector<int32_t> prompt = tm.prompt_tokens(text, chat);
  const std::unique_lock<std::mutex> lock = lock_model_or_refuse(context);
  const Attribution a = attribute_logit(tm.model, prompt, target.token, target.versus, interventions);
  nlohmann::json j = attribution_json(a, top, [&](int32_t id) { return context.token_text(id); });
  j["prompt_tokens"] = prompt.size();
  send_json(response, j);
}

void patch(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  const TextModel& tm = context.require_model();
  const ModelConfig& c = tm.model.config();
  const nlohmann::json body = parse_json_object(request.body);
  const bool chat = json_bool(body, "chat", false);
  const std::vector<int32_t> clean = tm.prompt_tokens(json_string(body, "clean", 1, kMaxPromptBytes), chat);
  const std::vector<int32_t> corrupt = tm.prompt_tokens(json_string(body, "corrupt", 1, kMaxPromptBytes), chat);
  if (clean.size() != corrupt.size()) {
    bad_request("clean is " + std::to_string(clean.size()) + " tokens and corrupt " + std::to_string(corrupt.size()) +
                ": activation patching needs prompts of the same token count");
  }
  const LogitTargetTokens target = read_target(tm, body);
  std::vector<int64_t> layers;
  const nlohmann::json& layer_list = json_array(body, "layers", static_cast<size_t>(c.n_layers));
  for (size_t i = 0; i < layer_list.size(); ++i) {
    if (!layer_list[i].is_number_integer()) bad_request("layers[" + std::to_string(i) + "]: must be an integer");
    const auto layer = layer_list[i].get<int64_t>();
    if (layer < 0 || layer >= c.n_layers) {
      bad_request("layers[" + std::to_string(i) + "]: layer " + std::to_string(layer) +
                  " is out of range (the model has layers 0 to " + std::to_string(c.n_layers - 1) + ")");
    }
    layers.push_back(layer);
  }
  const auto n_layers = static_cast<int64_t>(layers.empty() ? static_cast<size_t>(c.n_layers) : layers.size());
  const int64_t passes = patching_passes(n_layers, static_cast<int64_t>(clean.size()), c.n_heads);
  if (passes > kMostPatchPasses) {
    bad_request("this patching would take " + std::to_string(passes) + " forward passes (at most " +
                std::to_string(kMostPatchPasses) + " a request): name fewer layers, or a shorter prompt");
  }
  const std::unique_lock<std::mutex> lock = lock_model_or_refuse(context);
  const PatchingResult r = patch_activations(tm.model, clean, corrupt, target.token, target.versus, layers);
  send_json(response, patching_json(r, clean, corrupt, [&](int32_t id) { return context.token_text(id); }));
}

}  // namespace

void add_circuit_routes(Router& router, ServerContext& context) {
  router.add("POST", "/api/attribute", [&context](const auto& request, auto& response, const auto&) {
    attribute(context, request, response);
  });
  router.add("POST", "/api/patch", [&context](const auto& request, auto& response, const auto&) {
    patch(context, request, response);
  });
}

}  // namespace neuronlens::server

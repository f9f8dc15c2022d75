// Browsing the atlas: info, the heat map, layer listings, one neuron, tokens.
#include <cstdint>
#include <string>

#include "compare_index.h"
#include "evidence_json.h"
#include "json_reply.h"
#include "json_views.h"
#include "request_error.h"
#include "request_params.h"
#include "routes.h"

namespace neuronlens::server {
namespace {

constexpr VectorKind kKinds[] = {VectorKind::Up, VectorKind::Gate, VectorKind::Down};
constexpr int64_t kDefaultShowTop = 5;
constexpr int64_t kMostShowTop = 100;
constexpr int64_t kDefaultContexts = 10;
constexpr int64_t kMostContexts = 100;

std::string kind_name(VectorKind kind) { return std::string(vector_kind_name(kind)); }

nlohmann::json info_json(const ServerContext& context) {
  const AtlasSettings& s = context.settings();
  nlohmann::json mapped = nlohmann::json::object();
  for (VectorKind kind : kKinds) {
    const auto it = context.mapped().find(kind);
    mapped[kind_name(kind)] = it == context.mapped().end() ? nlohmann::json::array() : nlohmann::json(it->second);
  }
  for (HeadCircuit circuit : {HeadCircuit::Ov, HeadCircuit::Qk}) {
    const auto it = context.mapped_heads().find(circuit);
    mapped[std::string(head_circuit_name(circuit))] =
        it == context.mapped_heads().end() ? nlohmann::json::array() : nlohmann::json(it->second);
  }
  nlohmann::json compare = nullptr;
  if (const CompareIndex* c = context.compare()) {
    const AtlasSettings& b = c->settings();
    compare = {{"model_name", b.model_name}, {"file", file_name(c->path())}, {"sha256", b.model_sha256}};
  }
  const TextModel* model = context.text_model();
  return {{"model",
           {{"name", s.model_name},
            {"architecture", s.architecture},
            {"n_layers", s.n_layers},
            {"d_model", s.d_model},
            {"d_ffn", s.d_ffn},
            {"vocab_size", s.vocab_size},
            {"sha256", s.model_sha256},
            {"file", file_name(s.model_path)}}},
          {"settings", {{"norm", std::string(norm_mode_name(s.norm))}, {"top_k", s.top_k}}},
          {"mapped", std::move(mapped)},
          {"neurons", context.neuron_count()},
          {"model_loaded", model != nullptr},
          {"exact_search", model != nullptr},
          {"note", context.model_note()},
          {"compare", std::move(compare)},
          {"chat_template", model != nullptr && model->chat.has_value()},
          {"record", record_info_json(context.record())},
          // The loaded model's attention heads, for the playground's head interventions.
          {"n_heads", model != nullptr ? nlohmann::json(model->model.config().n_heads) : nlohmann::json()},
          {"head_rank", context.head_rank()},
          {"limits",
           {{"max_tokens", kMaxTokens}, {"max_clamps", kMaxInterventions}, {"max_prompt_bytes", kMaxPromptBytes}}}};
}

int64_t layer_param(const ServerContext& context, const std::string& segment) {
  return path_integer(segment, "layer", 0, context.settings().n_layers - 1);
}

void require_mapped(const ServerContext& context, VectorKind kind, int64_t layer) {
  if (!context.is_mapped(kind, layer)) {
    not_found("layer " + std::to_string(layer) + " of kind " + kind_name(kind) + " is not mapped in this atlas");
  }
}

void list_layer(ServerContext& context, const httplib::Request& request, httplib::Response& response,
                const PathParams& path) {
  const int64_t layer = layer_param(context, path[0]);
  const VectorKind kind = path_kind(path[1]);
  const std::string sort = query_choice(request.params, "sort", "index", {"index", "entropy", "top1_prob"});
  const std::string order = query_choice(request.params, "order", "asc", {"asc", "desc"});
  const int64_t offset = query_integer(request.params, "offset", 0, 0, INT64_MAX);
  const int64_t limit = query_integer(request.params, "limit", 50, 1, kMaxPageLimit);
  const auto show_top = static_cast<int>(query_integer(request.params, "show_top", kDefaultShowTop, 0, kMostShowTop));
  require_mapped(context, kind, layer);
  const Atlas::NeuronOrder by = sort == "entropy"     ? Atlas::NeuronOrder::Entropy
                                : sort == "top1_prob" ? Atlas::NeuronOrder::Top1Prob
                                                      : Atlas::NeuronOrder::Index;
  nlohmann::json items = nlohmann::json::array();
  const AtlasPool::Lease atlas = context.atlas().acquire();
  for (const AtlasNeuron& n : atlas->layer_neurons(kind, layer, by, order == "desc", offset, limit, show_top)) {
    items.push_back(neuron_summary_json(context, n, show_top));
  }
  nlohmann::json page = page_json(context.settings().d_ffn, offset, limit, std::move(items));
  page["layer"] = layer;
  page["kind"] = kind_name(kind);
  page["sort"] = sort;
  page["order"] = order;
  send_json(response, page);
}

void show_neuron(ServerContext& context, const httplib::Request& request, httplib::Response& response,
                 const PathParams& path) {
  const int64_t layer = layer_param(context, path[0]);
  const VectorKind kind = path_kind(path[1]);
  const int64_t d_ffn = context.settings().d_ffn;
  const int64_t index = path_integer(path[2], "index", 0, d_ffn - 1);
  const auto show_top = static_cast<int>(query_integer(request.params, "show_top", kDefaultShowTop, 0, kMostShowTop));
  require_mapped(context, kind, layer);
  const AtlasPool::Lease atlas = context.atlas().acquire();
  const std::optional<AtlasNeuron> neuron = atlas->neuron(kind, layer, index);
  if (!neuron) not_found("neuron " + std::to_string(index) + " is not in the atlas");
  nlohmann::json j = neuron_summary_json(context, *neuron, -1);
  nlohmann::json others = nlohmann::json::object();
  for (VectorKind other : kKinds) {
    const std::optional<AtlasNeuron> same_place =
        context.is_mapped(other, layer) ? atlas->neuron(other, layer, index) : std::nullopt;
    others[kind_name(other)] = same_place ? neuron_summary_json(context, *same_place, show_top) : nlohmann::json();
  }
  j["other_kinds"] = std::move(others);
  j["neighbours"] = {{"previous", index > 0 ? nlohmann::json(index - 1) : nlohmann::json()},
                     {"next", index + 1 < d_ffn ? nlohmann::json(index + 1) : nlohmann::json()}};
  // The neuron's recorded contexts (`neuronlens record`), whatever the kind.
  const int64_t contexts = query_integer(request.params, "contexts", kDefaultContexts, 0, kMostContexts);
  const std::optional<NeuronEvidence> evidence = atlas->neuron_evidence(layer, index);
  j["evidence"] = evidence ? evidence_json(*atlas, *evidence, contexts) : nlohmann::json();
  send_json(response, j);
}

void search_tokens(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  const std::optional<std::string> q = query_text(request.params, "q", 1, kMaxQueryBytes);
  if (!q) bad_request("q: required (the text to look for in token texts)");
  const int64_t limit = query_integer(request.params, "limit", 50, 1, kMaxPageLimit);
  const AtlasPool::Lease atlas = context.atlas().acquire();
  nlohmann::json items = nlohmann::json::array();
  for (int32_t id : atlas->search_tokens(*q, static_cast<int>(limit))) {
    nlohmann::json token = token_json(context, id);
    token["neurons"] = atlas->count_neurons_with_token(id);
    items.push_back(std::move(token));
  }
  send_json(response, {{"items", std::move(items)}});
}

void token_neurons(ServerContext& context, const httplib::Request& request, httplib::Response& response,
                   const PathParams& path) {
  const auto token = static_cast<int32_t>(path_integer(path[0], "id", 0, context.vocab_rows() - 1));
  const int64_t offset = query_integer(request.params, "offset", 0, 0, INT64_MAX);
  const int64_t limit = query_integer(request.params, "limit", 50, 1, kMaxPageLimit);
  const auto show_top = static_cast<int>(query_integer(request.params, "show_top", kDefaultShowTop, 0, kMostShowTop));
  const AtlasPool::Lease atlas = context.atlas().acquire();
  nlohmann::json items = nlohmann::json::array();
  for (const Atlas::TokenHit& hit : atlas->neurons_with_token(token, offset, limit)) {
    const std::optional<AtlasNeuron> n = atlas->neuron(hit.kind, hit.layer, hit.index);
    if (!n) continue;
    nlohmann::json item = neuron_summary_json(context, *n, show_top);
    item["rank"] = hit.rank + 1;
    item["prob"] = hit.prob;
    items.push_back(std::move(item));
  }
  nlohmann::json page = page_json(atlas->count_neurons_with_token(token), offset, limit, std::move(items));
  page["token"] = token_json(context, token);
  send_json(response, page);
}

}  // namespace

void add_atlas_routes(Router& router, ServerContext& context) {
  // Info never changes while the server runs.
  const std::string info = json_text(info_json(context));
  router.add("GET", "/api/info", [info](const httplib::Request&, httplib::Response& response, const PathParams&) {
    response.set_content(info, "application/json");
  });
  router.add("GET", "/api/overview", [&context](const httplib::Request& request, httplib::Response& response,
                                                const PathParams&) {
    send_json(response, context.overview(query_number(request.params, "threshold", 0.5, 0.0, 1.0, true)));
  });
  // A neuron's record alone (no map needed): the playground's clamp values.
  router.add("GET", "/api/record/{layer}/{index}", [&context](const auto& request, auto& response, const auto& path) {
    const int64_t layer = layer_param(context, path[0]);
    const int64_t index = path_integer(path[1], "index", 0, context.settings().d_ffn - 1);
    const int64_t contexts = query_integer(request.params, "contexts", kDefaultContexts, 0, kMostContexts);
    if (!context.record()) not_found("this atlas holds no activation record (neuronlens record)");
    const AtlasPool::Lease atlas = context.atlas().acquire();
    const std::optional<NeuronEvidence> evidence = atlas->neuron_evidence(layer, index);
    if (!evidence) not_found("neuron " + std::to_string(layer) + ":" + std::to_string(index) + " has no record");
    nlohmann::json j = evidence_json(*atlas, *evidence, contexts);
    j["layer"] = layer;
    j["index"] = index;
    send_json(response, j);
  });
  router.add("GET", "/api/agreement", [&context](const auto&, auto& response, const auto&) {
    send_json(response, context.agreement());
  });
  router.add("GET", "/api/layers/{layer}/{kind}",
             [&context](const auto& request, auto& response, const auto& path) {
               list_layer(context, request, response, path);
             });
  router.add("GET", "/api/neurons/{layer}/{kind}/{index}",
             [&context](const auto& request, auto& response, const auto& path) {
               show_neuron(context, request, response, path);
             });
  router.add("GET", "/api/tokens", [&context](const auto& request, auto& response, const auto&) {
    search_tokens(context, request, response);
  });
  router.add("GET", "/api/tokens/{id}/neurons", [&context](const auto& request, auto& response, const auto& path) {
    token_neurons(context, request, response, path);
  });
}

}  // namespace neuronlens::server

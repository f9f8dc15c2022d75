// /api/compare/...: the served atlas against the --compare one.
#include <cstdint>
#include <string>

#include "compare_index.h"
#include "json_reply.h"
#include "json_views.h"
#include "neuronlens/neuron_map.h"
#include "request_params.h"
#include "routes.h"

namespace neuronlens::server {
namespace {

nlohmann::json top_tokens_json(const ServerContext& context, const std::optional<AtlasNeuron>& neuron) {
  nlohmann::json tokens = nlohmann::json::array();
  if (!neuron) return tokens;
  for (size_t i = 0; i < neuron->top_ids.size(); ++i) {
    tokens.push_back(token_json(context, neuron->top_ids[i], neuron->top_logits[i], neuron->top_probs[i]));
  }
  return tokens;
}

void summary(ServerContext& context, httplib::Response& response) {
  CompareIndex& compare = context.require_compare();
  const CompareIndex::Result& result = compare.result(*context.atlas().acquire());
  nlohmann::json kinds = nlohmann::json::array();
  for (const KindAgreement& k : result.kinds) {
    kinds.push_back({{"kind", std::string(vector_kind_name(k.kind))},
                     {"neurons", k.neurons},
                     {"top1_same", k.top1_same},
                     {"mean_overlap", k.mean_overlap}});
  }
  nlohmann::json layers = nlohmann::json::array();
  for (const LayerAgreement& l : result.layers) {
    layers.push_back({{"kind", std::string(vector_kind_name(l.kind))},
                      {"layer", l.layer},
                      {"neurons", l.neurons},
                      {"top1_same", l.top1_same},
                      {"mean_overlap", l.mean_overlap}});
  }
  send_json(response, {{"a", {{"model_name", context.settings().model_name}, {"file", file_name(context.atlas().path())}}},
                       {"b", {{"model_name", compare.settings().model_name}, {"file", file_name(compare.path())}}},
                       {"kinds", std::move(kinds)},
                       {"layers", std::move(layers)}});
}

void changed(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  CompareIndex& compare = context.require_compare();
  const std::string kind_text = query_choice(request.params, "kind", "all", {"all", "up", "gate", "down"});
  const std::string layer_text = query_text(request.params, "layer", 1, 20).value_or("all");
  const int64_t layer =
      layer_text == "all" ? -1 : path_integer(layer_text, "layer", 0, context.settings().n_layers - 1);
  const int64_t offset = query_integer(request.params, "offset", 0, 0, INT64_MAX);
  const int64_t limit = query_integer(request.params, "limit", 50, 1, kMaxPageLimit);

  const AtlasPool::Lease a = context.atlas().acquire();
  const AtlasPool::Lease b = compare.atlas().acquire();
  const CompareIndex::Result& result = compare.result(*a);
  nlohmann::json items = nlohmann::json::array();
  int64_t total = 0;
  for (const CompareIndex::Changed& c : result.changed) {
    if ((kind_text != "all" && vector_kind_name(c.kind) != kind_text) || (layer >= 0 && c.layer != layer)) continue;
    if (total >= offset && total - offset < limit) {  // not offset + limit: offset may be near INT64_MAX
      items.push_back({{"layer", c.layer},
                       {"kind", std::string(vector_kind_name(c.kind))},
                       {"index", c.index},
                       {"overlap", c.overlap},
                       {"top_a", top_tokens_json(context, a->neuron(c.kind, c.layer, c.index))},
                       {"top_b", top_tokens_json(context, b->neuron(c.kind, c.layer, c.index))}});
    }
    ++total;
  }
  send_json(response, page_json(total, offset, limit, std::move(items)));
}

}  // namespace

void add_compare_routes(Router& router, ServerContext& context) {
  router.add("GET", "/api/compare/summary", [&context](const auto&, auto& response, const auto&) {
    summary(context, response);
  });
  router.add("GET", "/api/compare/changed", [&context](const auto& request, auto& response, const auto&) {
    changed(context, request, response);
  });
}

}  // namespace neuronlens::server

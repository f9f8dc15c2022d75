// The attention heads of an atlas that mapped them (map --kinds ov,qk):
// a layer's heads with their leading directions, and one head's directions,
// each side's tokens decoded (docs/api.md).
#include <string>
#include <vector>

#include "json_reply.h"
#include "json_views.h"
#include "request_error.h"
#include "request_params.h"
#include "routes.h"

namespace neuronlens::server {
namespace {

constexpr int64_t kMostHeads = 1024;

HeadCircuit path_circuit(const std::string& segment) {
  if (segment == "ov") return HeadCircuit::Ov;
  if (segment == "qk") return HeadCircuit::Qk;
  bad_request("circuit: '" + segment.substr(0, 16) + "' is not ov or qk");
}

int64_t mapped_layer(const ServerContext& context, const std::string& segment, HeadCircuit circuit) {
  const int64_t layer = path_integer(segment, "layer", 0, context.settings().n_layers - 1);
  if (!context.is_head_mapped(circuit, layer)) {
    not_found("layer " + std::to_string(layer) + "'s " + std::string(head_circuit_name(circuit)) +
              " circuits are not mapped in this atlas");
  }
  return layer;
}

nlohmann::json side_json(const ServerContext& context, HeadCircuit circuit, int side, const AtlasHeadSide& s,
                         int64_t show_top) {
  nlohmann::json top = nlohmann::json::array();
  for (size_t i = 0; i < s.top_ids.size() && (show_top < 0 || static_cast<int64_t>(i) < show_top); ++i) {
    top.push_back(token_json(context, s.top_ids[i], s.top_logits[i], s.top_probs[i]));
  }
  return {{"side", head_side_name(circuit, side)}, {"logsumexp", s.logsumexp}, {"entropy", s.entropy},
          {"topk_mass", s.topk_mass}, {"top", std::move(top)}};
}

nlohmann::json head_json(const ServerContext& context, HeadCircuit circuit, int64_t layer, int64_t head,
                         const std::vector<AtlasHeadDirection>& dirs, int64_t show_top) {
  nlohmann::json directions = nlohmann::json::array();
  for (const AtlasHeadDirection& d : dirs) {
    directions.push_back({{"rank", d.rank},
                          {"singular_value", d.singular_value},
                          {"sides", {side_json(context, circuit, 0, d.sides[0], show_top),
                                     side_json(context, circuit, 1, d.sides[1], show_top)}}});
  }
  return {{"layer", layer}, {"circuit", head_circuit_name(circuit)}, {"head", head},
          {"directions", std::move(directions)}};
}

// GET /api/heads/{layer}/{circuit}: every head of the layer.
void list_heads(ServerContext& context, const httplib::Request& request, httplib::Response& response,
                const PathParams& path) {
  const HeadCircuit circuit = path_circuit(path[1]);
  const int64_t layer = mapped_layer(context, path[0], circuit);
  const int64_t show_top = query_integer(request.params, "show_top", 5, 0, 100);
  const AtlasPool::Lease atlas = context.atlas().acquire();
  nlohmann::json heads = nlohmann::json::array();
  for (int64_t h = 0; h < kMostHeads; ++h) {
    const std::vector<AtlasHeadDirection> dirs = atlas->head(circuit, layer, h);
    if (dirs.empty()) break;
    heads.push_back(head_json(context, circuit, layer, h, dirs, show_top));
  }
  send_json(response, {{"layer", layer}, {"circuit", head_circuit_name(circuit)}, {"heads", std::move(heads)}});
}

// GET /api/heads/{layer}/{circuit}/{head}: one head, every stored token.
void show_head(ServerContext& context, const httplib::Request&, httplib::Response& response, const PathParams& path) {
  const HeadCircuit circuit = path_circuit(path[1]);
  const int64_t layer = mapped_layer(context, path[0], circuit);
  const int64_t head = path_integer(path[2], "head", 0, kMostHeads - 1);
  const AtlasPool::Lease atlas = context.atlas().acquire();
  const std::vector<AtlasHeadDirection> dirs = atlas->head(circuit, layer, head);
  if (dirs.empty()) not_found("head " + std::to_string(head) + " is not in layer " + std::to_string(layer));
  nlohmann::json j = head_json(context, circuit, layer, head, dirs, -1);
  j["neighbours"] = {{"previous", head > 0 ? nlohmann::json(head - 1) : nlohmann::json()},
                     {"next", atlas->head(circuit, layer, head + 1).empty() ? nlohmann::json() : nlohmann::json(head + 1)}};
  send_json(response, j);
}

}  // namespace

void add_head_routes(Router& router, ServerContext& context) {
  router.add("GET", "/api/heads/{layer}/{circuit}", [&context](const auto& request, auto& response, const auto& path) {
    list_heads(context, request, response, path);
  });
  router.add("GET", "/api/heads/{layer}/{circuit}/{head}",
             [&context](const auto& request, auto& response, const auto& path) {
               show_head(context, request, response, path);
             });
}

}  // namespace neuronlens::server

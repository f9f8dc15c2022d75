// GET /api/search: the same ranking as `neuronlens find` — exact over every
// neuron with the model's weights, else within the atlas's stored top-k.
#include <algorithm>
#include <cstdint>
#include <string>

#include "json_reply.h"
#include "json_views.h"
#include "neuronlens/neuron_map.h"
#include "request_error.h"
#include "request_params.h"
#include "routes.h"
#include "search_cache.h"

namespace neuronlens::server {
namespace {

constexpr size_t kMaxListBytes = 1000;  // kinds= and layers= texts
// Searches are computed this many hits deep at a time, so the next pages of
// one search come from the cache.
constexpr int64_t kDepthStep = 100;

// The core's list parsers name no option or parameter; the reply names the
// query parameter ("layers: range '5-2' runs backwards").
template <typename Parse>
auto parse_list_parameter(const std::string& name, Parse parse) {
  try {
    return parse();
  } catch (const Error& e) {
    if (e.kind() != ErrorKind::BadInput) throw;
    bad_request(name + ": " + e.what());
  }
}

struct SearchQuery {
  std::string text;
  bool exact_variants = false;  // the concept as typed, without its variants
  bool exact_ranking = true;    // over all neurons with the weights, when there are weights
  RankBy by = RankBy::Probability;
  std::vector<VectorKind> kinds;
  std::vector<int64_t> layers;
};

std::string cache_key(const SearchQuery& q) {
  // Appended piece by piece (GCC 12 warns falsely on chains of string +).
  std::string key = q.text;
  key += q.exact_variants ? "\n1" : "\n0";
  key += q.exact_ranking ? "1" : "0";
  key += q.by == RankBy::Logit ? "logit" : "prob";
  for (VectorKind k : q.kinds) {
    key += ',';
    key += vector_kind_name(k);
  }
  key += '\n';
  for (int64_t l : q.layers) {
    key += std::to_string(l);
    key += ',';
  }
  return key;
}

// The kinds and layers to rank, all mapped: the kinds asked for that the
// atlas has, and the layers asked for (404 when one is not mapped for all
// those kinds) or by default the layers they all have.
void choose_kinds_and_layers(const ServerContext& context, const QueryParams& params, SearchQuery& q) {
  const std::string kinds = query_text(params, "kinds", 1, kMaxListBytes).value_or("all");
  for (VectorKind kind : parse_list_parameter("kinds", [&] { return parse_kind_list(kinds); })) {
    if (context.mapped().count(kind)) q.kinds.push_back(kind);
  }
  if (q.kinds.empty()) not_found("none of the kinds searched is mapped in this atlas");
  const std::string layers = query_text(params, "layers", 1, kMaxListBytes).value_or("all");
  const std::vector<int64_t> asked =
      parse_list_parameter("layers", [&] { return parse_layer_list(layers, context.settings().n_layers); });
  for (int64_t layer : asked) {
    const bool in_every_kind = std::all_of(q.kinds.begin(), q.kinds.end(),
                                           [&](VectorKind k) { return context.is_mapped(k, layer); });
    if (in_every_kind) {
      q.layers.push_back(layer);
    } else if (layers != "all") {
      not_found("layer " + std::to_string(layer) + " is not mapped for every kind searched");
    }
  }
  if (q.layers.empty()) not_found("no layer is mapped for every kind searched");
}

std::shared_ptr<const SearchResult> compute(ServerContext& context, const SearchQuery& q, int64_t depth) {
  auto result = std::make_shared<SearchResult>();
  result->depth = depth;
  FindOptions find;
  find.kinds = q.kinds;
  find.layers = q.layers;
  find.rank_by = q.by;
  find.limit = static_cast<int>(depth);
  find.show_top = 100;
  const AtlasPool::Lease atlas = context.atlas().acquire();
  const TextModel* model = context.text_model();
  if (model != nullptr && q.exact_ranking) {
    result->concept_tokens = expand_concept(model->model.vocab(), q.text, q.exact_variants);
    result->exact = true;
    result->total = static_cast<int64_t>(q.kinds.size() * q.layers.size()) * context.settings().d_ffn;
    result->hits = find_concept(model->model, *context.decoder(), &*atlas, result->concept_tokens, find);
  } else {
    result->concept_tokens = expand_concept(context.atlas_vocabulary(), q.text, q.exact_variants);
    result->note = model != nullptr ? "exact=0: ranked within the stored top-k" : context.model_note();
    result->hits = find_concept_in_atlas(*atlas, result->concept_tokens, find, &result->total);
  }
  return result;
}

void search(ServerContext& context, const httplib::Request& request, httplib::Response& response) {
  const QueryParams& params = request.params;
  SearchQuery q;
  const std::optional<std::string> text = query_text(params, "q", 1, kMaxQueryBytes);
  if (!text) bad_request("q: required (the concept to look for, e.g. dog)");
  q.text = *text;
  const std::string by = query_choice(params, "by", "prob", {"prob", "logit"});
  q.by = rank_by_from_name(by);
  q.exact_ranking = query_flag(params, "exact", true);
  q.exact_variants = !query_flag(params, "variants", true);
  const int64_t offset = query_integer(params, "offset", 0, 0, kMaxSearchDepth - 1);
  const int64_t limit = query_integer(params, "limit", 20, 1, kMaxPageLimit);
  if (offset + limit > kMaxSearchDepth) {
    bad_request("offset + limit: a search lists its best " + std::to_string(kMaxSearchDepth) + " neurons at most");
  }
  const auto show_top = static_cast<size_t>(query_integer(params, "show_top", 8, 0, 100));
  choose_kinds_and_layers(context, params, q);

  const int64_t depth = std::min(kMaxSearchDepth, (offset + limit + kDepthStep - 1) / kDepthStep * kDepthStep);
  const std::string key = cache_key(q);
  std::shared_ptr<const SearchResult> result = context.search_cache().find(key, depth);
  if (!result) {
    // One computation at a time; a request that waited may find its answer
    // made by the one before it.
    std::lock_guard lock(context.search_mutex());
    result = context.search_cache().find(key, depth);
    if (!result) {
      result = compute(context, q, depth);
      context.search_cache().put(key, result);
    }
  }

  nlohmann::json items = nlohmann::json::array();
  for (auto i = static_cast<size_t>(offset); i < result->hits.size() && i < static_cast<size_t>(offset + limit); ++i) {
    const ConceptHit& h = result->hits[i];
    nlohmann::json top = nlohmann::json::array();
    for (size_t t = 0; t < h.top_ids.size() && t < show_top; ++t) {
      top.push_back(token_json(context, h.top_ids[t], std::nullopt, h.top_probs[t]));
    }
    items.push_back({{"layer", h.layer},
                     {"kind", std::string(vector_kind_name(h.kind))},
                     {"index", h.index},
                     {"prob", h.prob},
                     {"logit", h.logit},
                     {"rank", h.rank},
                     {"top", std::move(top)}});
  }
  const ConceptTokens& c = result->concept_tokens;
  nlohmann::json page = page_json(result->total, offset, limit, std::move(items));
  page["concept"] = {{"text", c.concept_text}, {"variants", c.variants}, {"ids", c.ids}, {"not_single", c.not_single}};
  page["exact"] = result->exact;
  page["note"] = result->note;
  page["by"] = by;
  send_json(response, page);
}

}  // namespace

void add_search_routes(Router& router, ServerContext& context) {
  router.add("GET", "/api/search", [&context](const auto& request, auto& response, const auto&) {
    search(context, request, response);
  });
}

}  // namespace neuronlens::server

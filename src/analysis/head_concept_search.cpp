// Concept search over an atlas's head directions (neuronlens/concept_search.h):
// as find_concept_in_atlas does for neurons, within the stored top-k.
#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "analysis/concept_rank.h"
#include "neuronlens/concept_search.h"

namespace neuronlens {
std::vector<HeadConceptHit> find_concept_in_heads(const Atlas& atlas, const ConceptTokens& concept_tokens,
                                                  const std::vector<HeadCircuit>& circuits,
                                                  const FindOptions& options) {
  using Key = std::tuple<HeadCircuit, int64_t, int64_t, int, int>;
  std::map<Key, HeadConceptHit> by_direction;
  const std::set<int64_t> layers(options.layers.begin(), options.layers.end());
  for (int32_t token : concept_tokens.ids) {
    for (const Atlas::HeadTokenHit& t : atlas.heads_with_token(token)) {
      if (std::find(circuits.begin(), circuits.end(), t.circuit) == circuits.end()) continue;
      if (!layers.empty() && !layers.count(t.layer)) continue;
      HeadConceptHit& h = by_direction[{t.circuit, t.layer, t.head, t.rank, t.side}];
      if (h.rank < 0) {
        h.circuit = t.circuit;
        h.layer = t.layer;
        h.head = t.head;
        h.direction = t.rank;
        h.side = t.side;
        h.logit = t.logit;
        h.rank = t.position + 1;
      }
      h.prob += t.prob;
      h.logit = std::max(h.logit, t.logit);
      h.rank = std::min<int64_t>(h.rank, t.position + 1);
    }
  }
  std::vector<HeadConceptHit> hits;
  for (auto& [key, h] : by_direction) hits.push_back(h);
  const auto keep = std::min<size_t>(hits.size(), static_cast<size_t>(options.limit));
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end(),
                    [&](const HeadConceptHit& a, const HeadConceptHit& b) {
                      return ranks_before(a, b, options.rank_by, [](const HeadConceptHit& h) {
                        return std::tie(h.layer, h.circuit, h.head, h.direction, h.side);
                      });
                    });
  hits.resize(keep);
  for (HeadConceptHit& h : hits) {
    const std::vector<AtlasHeadDirection> dirs = atlas.head(h.circuit, h.layer, h.head);
    if (static_cast<size_t>(h.direction) >= dirs.size()) continue;
    const AtlasHeadSide& side = dirs[static_cast<size_t>(h.direction)].sides[h.side];
    for (size_t i = 0; i < side.top_ids.size() && static_cast<int>(i) < options.show_top; ++i) {
      h.top_ids.push_back(side.top_ids[i]);
      h.top_probs.push_back(side.top_probs[i]);
    }
  }
  return hits;
}

}  // namespace neuronlens

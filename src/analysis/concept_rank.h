// The order concept-search hits are listed in (RankBy), shared by the
// neuron and the head-direction searches: by the chosen score, then by
// `place` (layer first), so that equal scores list in a fixed order.
#pragma once

#include "neuronlens/concept_search.h"

namespace neuronlens {

// Hit has prob, logit and rank; place(hit) returns a tuple to break ties.
template <typename Hit, typename Place>
bool ranks_before(const Hit& a, const Hit& b, RankBy by, Place place) {
  switch (by) {
    case RankBy::Probability:
      if (a.prob != b.prob) return a.prob > b.prob;
      break;
    case RankBy::Logit:
      if (a.logit != b.logit) return a.logit > b.logit;
      break;
    case RankBy::Rank:
      if (a.rank != b.rank) return a.rank < b.rank;
      if (a.prob != b.prob) return a.prob > b.prob;
      break;
  }
  return place(a) < place(b);
}

}  // namespace neuronlens

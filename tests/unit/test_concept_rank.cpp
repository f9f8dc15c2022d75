// The rank `find` reports is the position of the best concept token in the
// neuron's whole decoded distribution, consistent with its top tokens.
#include <gtest/gtest.h>

#include <algorithm>

#include "neuronlens/concept_search.h"
#include "neuronlens/decode.h"
#include "neuronlens/model.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

TEST(ConceptRank, AgreesWithTheNeuronsOwnTopTokensOnTheDefaultModel) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  const Model model = Model::load(path);
  const LmHeadDecoder decoder(model, DecodeSettings{});
  const ConceptTokens dog = expand_concept(model.vocab(), "dog", false);
  FindOptions options;
  options.layers = {29};  // holds SmolLM2's dog neurons; one layer keeps the test fast
  options.limit = 20;
  options.show_top = 20;
  for (RankBy by : {RankBy::Probability, RankBy::Rank}) {
    options.rank_by = by;
    const auto hits = find_concept(model, decoder, nullptr, dog, options);
    ASSERT_EQ(hits.size(), 20u);
    int checked = 0;
    for (const ConceptHit& h : hits) {
      // Where a concept token is among the top tokens, its place there is the rank.
      const auto first = std::find_if(h.top_ids.begin(), h.top_ids.end(), [&](int32_t id) {
        return std::find(dog.ids.begin(), dog.ids.end(), id) != dog.ids.end();
      });
      if (first == h.top_ids.end()) {
        EXPECT_GT(h.rank, 20) << h.layer << ":" << h.index;
        continue;
      }
      EXPECT_EQ(h.rank, 1 + (first - h.top_ids.begin())) << h.layer << ":" << h.index;
      ++checked;
    }
    EXPECT_GE(checked, 2);  // at least 29:gate:808 and 29:down:808, whose top-1 is a dog token
    if (by == RankBy::Rank) {
      for (size_t i = 1; i < hits.size(); ++i) EXPECT_LE(hits[i - 1].rank, hits[i].rank);
    }
  }
}

}  // namespace
}  // namespace neuronlens

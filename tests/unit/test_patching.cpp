// Activation patching (issue 15, part 4), against what causality fixes
// exactly: clean == corrupt changes nothing anywhere; the last layer's
// residual at the last position is the clean prediction, all of it; the last
// layer's residual at an earlier position, and any site before the first
// position where the prompts differ, hold the same values in both runs and
// change nothing.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "json_fixture.h"
#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "neuronlens/patching.h"
#include "neuronlens/text_model.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Ids every tiny model has (the family fixtures' vocabularies hold 318).
const std::vector<int32_t> kClean = {1, 300, 45, 12, 200, 7, 99, 260};
const std::vector<int32_t> kCorrupt = {1, 300, 45, 13, 201, 7, 99, 260};  // differs at 3 and 4
constexpr int64_t kFirstDifference = 3;

TEST(Patching, SamePromptsRestoreNothingAnywhere) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const PatchingResult r = patch_activations(model, kClean, kClean, 42, 17);
  EXPECT_EQ(r.clean, r.corrupt);
  for (const auto* effects : {&r.residual_effect, &r.mlp_effect, &r.heads_effect}) {
    for (double e : *effects) EXPECT_EQ(e, 0.0);
  }
  for (const auto* shares : {&r.residual, &r.mlp, &r.heads}) {
    for (double s : *shares) EXPECT_EQ(s, 0.0);
  }
}

void expect_causal_structure(const PatchingResult& r, const std::string& what) {
  const int64_t n = r.n_tokens;
  const size_t last_layer = r.layers.size() - 1;
  ASSERT_NE(r.clean, r.corrupt) << what;
  // The last layer's residual at the last position is what the LM head reads.
  EXPECT_DOUBLE_EQ(r.residual[last_layer * sz(n) + sz(n - 1)], 1.0) << what;
  for (int64_t p = 0; p < n - 1; ++p) {
    EXPECT_EQ(r.residual_effect[last_layer * sz(n) + sz(p)], 0.0) << what << " position " << p;
  }
  for (size_t k = 0; k < r.layers.size(); ++k) {
    for (int64_t p = 0; p < kFirstDifference; ++p) {
      EXPECT_EQ(r.residual_effect[k * sz(n) + sz(p)], 0.0) << what << " layer " << r.layers[k] << " position " << p;
      EXPECT_EQ(r.mlp_effect[k * sz(n) + sz(p)], 0.0) << what << " layer " << r.layers[k] << " position " << p;
    }
  }
  // The first layer's residual at the changed positions carries something.
  double changed = 0;
  for (int64_t p = kFirstDifference; p < n; ++p) changed += std::fabs(r.residual_effect[sz(p)]);
  EXPECT_GT(changed, 0.0) << what;
  // Shares are effects over the clean − corrupt gap.
  for (size_t i = 0; i < r.residual.size(); ++i) {
    EXPECT_NEAR(r.residual[i], r.residual_effect[i] / (r.clean - r.corrupt), 1e-12);
  }
}

TEST(Patching, CausalStructureOnTheTinyModels) {
  for (const std::string& path : std::vector<std::string>{testing::fixture_path("tiny_llama.gguf"),
                                                          testing::committed_fixture("families/gemma3/model.gguf")}) {
    const Model model = Model::load(path);
    int64_t calls = 0, last_total = 0;
    const PatchingResult r = patch_activations(model, kClean, kCorrupt, 42, 17, {}, [&](int64_t done, int64_t total) {
      EXPECT_EQ(done, ++calls);
      last_total = total;
    });
    const auto layers = static_cast<int64_t>(r.layers.size());
    EXPECT_EQ(layers, model.config().n_layers);
    EXPECT_EQ(r.residual.size(), sz(layers * r.n_tokens));
    EXPECT_EQ(r.heads.size(), sz(layers * model.config().n_heads));
    EXPECT_EQ(calls, last_total);
    EXPECT_EQ(calls, 2 * layers * r.n_tokens + layers * r.n_heads);
    expect_causal_structure(r, path);
  }
}

TEST(Patching, RefusesMismatchedPromptsAndBadLayersAndTokens) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  try {
    patch_activations(model, kClean, {1, 2, 3}, 42);
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("8 tokens"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("3"), std::string::npos) << e.what();
  }
  EXPECT_THROW(patch_activations(model, kClean, kCorrupt, 42, 42), Error);
  EXPECT_THROW(patch_activations(model, kClean, kCorrupt, -1), Error);
  EXPECT_THROW(patch_activations(model, kClean, kCorrupt, 42, std::nullopt, {model.config().n_layers}), Error);
  EXPECT_THROW(patch_activations(model, {}, {}, 42), Error);
}

// The default model on a fact, a few layers (each layer costs 2·n + 9
// passes): the subject's position carries the fact early, and the last
// position carries all of it at the end.
TEST(Patching, DefaultModelEiffelTowerAtAFewLayers) {
  const std::string path = testing::default_model_path();
  if (path.empty()) GTEST_SKIP() << "default model not fetched";
  const TextModel tm = TextModel::load(path);
  const std::vector<int32_t> clean = tm.prompt_tokens("The Eiffel Tower is in the city of", false);
  const std::vector<int32_t> corrupt = tm.prompt_tokens("The Colosseum is in the city of", false);
  ASSERT_EQ(clean.size(), corrupt.size()) << "the prompts must stay the same length in this vocabulary";
  const int32_t paris = tm.tokenizer.encode(" Paris", false).at(0);
  const int64_t last = tm.model.config().n_layers - 1;
  const PatchingResult r = patch_activations(tm.model, clean, corrupt, paris, std::nullopt, {0, last});
  EXPECT_GT(r.clean, r.corrupt);
  const int64_t n = r.n_tokens;
  EXPECT_DOUBLE_EQ(r.residual[sz(n) + sz(n - 1)], 1.0);
  // Layer 0: patching the subject's positions restores much of it; the
  // positions before the subject, nothing.
  double subject = 0;
  for (int64_t p = 0; p < n; ++p) {
    if (clean[sz(p)] != corrupt[sz(p)]) subject = std::max(subject, r.residual[sz(p)]);
  }
  std::printf("SmolLM2 Eiffel -> Colosseum: clean %.3f, corrupt %.3f, best subject position at layer 0 restores %.0f%%\n",
              r.clean, r.corrupt, 100 * subject);
  EXPECT_GT(subject, 0.25);
}

}  // namespace
}  // namespace neuronlens

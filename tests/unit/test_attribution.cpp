// Direct logit attribution (issue 15, part 3): the parts must add up to the
// logit the model computes, and that logit must be the float64 reference's
// on the tiny family models; every layer's heads must matter to the sum
// (else the test could not see a layer left out); and ablating the largest
// head moves the logit by about its part where the frozen norm holds.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "json_fixture.h"
#include "neuronlens/attribution.h"
#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "neuronlens/text_model.h"
#include "neuronlens/tokenizer.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

using testing::committed_fixture;
using testing::read_json;

// The sum is float64 over float32 parts: it should sit within ~1e-6 of the
// model's logit. The issue asks for 1e-4 relative; 1e-5 is ten times
// tighter and still far from the float32 pass's rounding, and it keeps the
// test able to see any one layer's heads left out (the default model's
// smallest layer total is a few 1e-4).
constexpr double kRelative = 1e-5;
// The family references' logit tolerance (test_family_fixtures.cpp).
constexpr double kReferenceTolerance = 2e-4;

void expect_parts_add_up(const Attribution& a, const std::string& what) {
  const double tolerance = kRelative * std::max(1.0, std::fabs(a.logit));
  EXPECT_LT(std::fabs(a.remainder()), tolerance) << what << ": logit " << a.logit << ", sum " << a.sum();
  // The test's power: leaving out any one layer's heads (or its MLP) would
  // move the sum past the tolerance.
  for (size_t l = 0; l < a.layers.size(); ++l) {
    EXPECT_GT(std::fabs(a.layers[l].attention), tolerance) << what << " layer " << l << " heads";
    EXPECT_GT(std::fabs(a.layers[l].mlp), tolerance) << what << " layer " << l << " MLP";
  }
  // The per-layer totals are the sums of the listed parts.
  double heads = 0, neurons = 0, totals = a.embedding;
  for (const LogitComponent& c : a.components) {
    if (c.kind == ComponentKind::Head) heads += c.contribution;
    if (c.kind == ComponentKind::Neuron) neurons += c.contribution;
  }
  for (const LayerContribution& l : a.layers) totals += l.attention + l.mlp;
  EXPECT_NEAR(totals, a.sum(), 1e-9 * std::max(1.0, std::fabs(a.sum())));
  EXPECT_NEAR(heads + neurons + a.embedding, a.sum(), 1e-9 * std::max(1.0, std::fabs(a.sum())));
  std::printf("%s: logit %.6f, remainder %.3g\n", what.c_str(), a.logit, a.remainder());
}

double uncap(double logit, double cap) { return cap > 0 ? cap * std::atanh(logit / cap) : logit; }

class FamilyAttribution : public ::testing::TestWithParam<std::string> {};

// Every family's output path (post-norms, embedding scale, soft-caps, fused
// projections), against the float64 reference's logits of the same prompt.
TEST_P(FamilyAttribution, PartsAddUpToTheReferenceLogit) {
  const std::string family = GetParam();
  const nlohmann::json ref = read_json(committed_fixture("families/" + family + "/reference.json"));
  const Model model = Model::load(committed_fixture("families/" + family + "/model.gguf"));
  const ModelConfig& c = model.config();
  const nlohmann::json& prompt = ref.at("prompts").at(0);
  const auto tokens = prompt.at("tokens").get<std::vector<int32_t>>();
  const auto last = prompt.at("logits").back().get<std::vector<double>>();
  const auto best = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
  const auto worst = static_cast<int32_t>(std::min_element(last.begin(), last.end()) - last.begin());

  const Attribution single = attribute_logit(model, tokens, best);
  EXPECT_NEAR(single.logit, uncap(last[size_t(best)], c.final_softcap), kReferenceTolerance) << family;
  EXPECT_EQ(single.components.size(), size_t(1 + c.n_layers * (c.n_heads + c.d_ffn)));
  expect_parts_add_up(single, family + " logit");

  const Attribution diff = attribute_logit(model, tokens, best, worst);
  EXPECT_NEAR(diff.logit, uncap(last[size_t(best)], c.final_softcap) - uncap(last[size_t(worst)], c.final_softcap),
              2 * kReferenceTolerance)
      << family;
  expect_parts_add_up(diff, family + " logit difference");
}

INSTANTIATE_TEST_SUITE_P(Families, FamilyAttribution,
                         ::testing::Values("qwen3", "gemma3", "gemma2", "olmo2", "phi3"));

TEST(Attribution, TinyLlamaPartsAddUpAndInterventionsAreAttributed) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const std::vector<int32_t> tokens = {1, 300, 45, 12, 500, 7, 7, 99, 260, 3, 17, 400, 2};
  const Attribution plain = attribute_logit(model, tokens, 42, 17);
  expect_parts_add_up(plain, "tiny_llama");

  // With neuron 1:7 clamped to 3, its part is 3 times what it writes, and
  // the whole still adds up to the (now different) logit.
  const Attribution clamped = attribute_logit(model, tokens, 42, 17, Interventions({{1, 7, 3.0f}}));
  expect_parts_add_up(clamped, "tiny_llama, 1:7 clamped");
  EXPECT_GT(std::fabs(clamped.logit - plain.logit), 1e-4);
  const auto part_of = [](const Attribution& a, ComponentKind kind, int64_t layer, int64_t index) {
    for (const LogitComponent& c : a.components) {
      if (c.kind == kind && c.layer == layer && c.index == index) return c.contribution;
    }
    ADD_FAILURE() << "no component";
    return 0.0;
  };
  // An ablated head has no part.
  const Attribution ablated = attribute_logit(model, tokens, 42, 17, Interventions({}, {{1, 2, 0.0f}}));
  EXPECT_EQ(part_of(ablated, ComponentKind::Head, 1, 2), 0.0);
  EXPECT_NE(part_of(plain, ComponentKind::Head, 1, 2), 0.0);
  expect_parts_add_up(ablated, "tiny_llama, head 1:2 ablated");

  // top(): largest |contribution| first, of one kind when asked.
  const std::vector<LogitComponent> top = plain.top(5, ComponentKind::Head);
  ASSERT_EQ(top.size(), 5u);
  for (size_t i = 1; i < top.size(); ++i) EXPECT_GE(std::fabs(top[i - 1].contribution), std::fabs(top[i].contribution));
  for (const LogitComponent& c : top) EXPECT_EQ(c.kind, ComponentKind::Head);
  EXPECT_EQ(plain.top(0).size(), plain.components.size());
}

TEST(Attribution, RefusesBadTokens) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const int32_t v = static_cast<int32_t>(model.config().vocab_size);
  for (auto call : std::vector<std::function<void()>>{
           [&] { attribute_logit(model, {}, 3); },
           [&] { attribute_logit(model, {1, 2}, v); },
           [&] { attribute_logit(model, {1, 2}, -1); },
           [&] { attribute_logit(model, {1, 2}, 3, 3); },
           [&] { attribute_logit(model, {1, 2}, 3, v); },
           [&] { attribute_logit(model, {1, 2}, 3, std::nullopt, Interventions({}, {{0, 99, 0.0f}})); }}) {
    try {
      call();
      ADD_FAILURE() << "no error";
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput) << e.what();
    }
  }
}

// The default model on a factual prompt: the parts add up, and the largest
// head's ablation moves the logit the same way as its attributed part, by
// an amount of the same order. They differ by what the frozen-norm reading
// leaves out: the final norm's scale changes when a large part is removed,
// and the layers after the head react to its absence (docs/circuits.md has
// the figures).
TEST(Attribution, DefaultModelEiffelTower) {
  const std::string path = testing::default_model_path();
  if (path.empty()) GTEST_SKIP() << "default model not fetched";
  const TextModel tm = TextModel::load(path);
  const std::vector<int32_t> prompt = tm.prompt_tokens("The Eiffel Tower is in the city of", false);
  const int32_t paris = tm.tokenizer.encode(" Paris", false).at(0);
  const Attribution a = attribute_logit(tm.model, prompt, paris);
  expect_parts_add_up(a, "SmolLM2 ' Paris'");
  const auto& check = a.top_head_check;
  std::printf("largest head %lld:%lld: attributed %+.4f, ablated change %+.4f (%.0f%%)\n",
              static_cast<long long>(check.layer), static_cast<long long>(check.head), check.attributed, check.change,
              100 * check.change / check.attributed);
  // Same sign, and the same order of size.
  EXPECT_GT(check.change / check.attributed, 0.25);
  EXPECT_LT(check.change / check.attributed, 4.0);
}

}  // namespace
}  // namespace neuronlens

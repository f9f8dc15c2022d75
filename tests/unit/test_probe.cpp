// The next-token probe (neuronlens/probe.h) on the tiny F32 Llama, against
// passes made by hand: "without" is the softmax of a plain forward, "with"
// that of a forward with the same ablation and clamp applied through
// Session::ablate_neurons / clamp_neurons, and the recorded activations are a
// record of mlp_act in the plain model. Also: the single-token check's
// message, and that the caller's hooks are left as they were, also after a
// failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/probe.h"
#include "neuronlens/sampling.h"
#include "neuronlens/text_model.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

double max_abs_diff(const std::vector<double>& a, const std::vector<double>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

// The same model, kernels and batch in another session: equal up to the
// order of float32 sums, far below any effect of an intervention.
constexpr double kSameRun = 1e-9;

class Probe : public ::testing::Test {
 protected:
  void SetUp() override {
    tm_ = std::make_unique<TextModel>(TextModel::load(testing::fixture_path("tiny_llama.gguf")));
    prompt_ = tm_->prompt_tokens("the dog", false);
    ASSERT_GE(prompt_.size(), 2u);
  }
  std::vector<double> next_token(Session& session) {
    session.reset();
    return softmax_probabilities(session.forward(prompt_, LogitsFor::LastToken));
  }
  std::unique_ptr<TextModel> tm_;
  std::vector<int32_t> prompt_;
};

TEST_F(Probe, SingleTokenIdsAndTheirMessage) {
  const std::vector<int32_t> dog = tm_->tokenizer.encode(" dog", false);
  ASSERT_EQ(dog.size(), 1u);
  EXPECT_EQ(single_token_id(tm_->tokenizer, " dog"), dog[0]);
  const size_t pieces = tm_->tokenizer.encode(" the dog", false).size();
  ASSERT_GT(pieces, 1u);
  try {
    single_token_id(tm_->tokenizer, " the dog");
    ADD_FAILURE() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), "' the dog' is " + std::to_string(pieces) +
                                         " tokens, not one (probe a single token, e.g. its first piece)");
  }
  EXPECT_THROW(single_token_id(tm_->tokenizer, ""), Error);
}

TEST_F(Probe, WithoutAndWithAreThePassesMadeByHand) {
  const Model& model = tm_->model;
  const std::vector<NeuronIntervention> interventions = {{0, 5, std::nullopt}, {1, 3, 25.0f}};
  const std::vector<FfnNeuron> recorded = {{0, 5}, {1, 7}, {0, 9}};
  Session session(model);
  const ProbeResult probe = probe_next_token(session, prompt_, interventions, recorded);

  Session plain(model);
  std::vector<std::shared_ptr<ActivationRecord>> records;
  for (const FfnNeuron& n : recorded) records.push_back(plain.record(HookPoint::MlpAct, n.layer));
  const std::vector<double> without = next_token(plain);
  EXPECT_LT(max_abs_diff(probe.without, without), kSameRun);

  Session by_hand(model);
  by_hand.ablate_neurons(0, {5});
  by_hand.clamp_neurons(1, {3}, 25.0f);
  const std::vector<double> with = next_token(by_hand);
  EXPECT_LT(max_abs_diff(probe.with, with), kSameRun);
  // The interventions do move the distribution, so the two are told apart.
  EXPECT_GT(max_abs_diff(without, with), 1e-4);

  ASSERT_EQ(probe.activations.size(), recorded.size());
  for (size_t k = 0; k < recorded.size(); ++k) {
    ASSERT_EQ(probe.activations[k].size(), prompt_.size());
    const ActivationRecord& rec = *records[k];
    ASSERT_EQ(rec.rows(), static_cast<int64_t>(prompt_.size()));
    for (int64_t r = 0; r < rec.rows(); ++r) {
      const float expected = rec.values[static_cast<size_t>(r * rec.width + recorded[k].neuron)];
      EXPECT_NEAR(probe.activations[k][static_cast<size_t>(rec.positions[static_cast<size_t>(r)])], expected, 1e-6)
          << "neuron " << k << " row " << r;
    }
  }
  // Recorded in the plain pass: the ablated neuron 0:5 is not zero there.
  EXPECT_TRUE(std::any_of(probe.activations[0].begin(), probe.activations[0].end(), [](float a) { return a != 0; }));
}

TEST_F(Probe, LeavesTheCallersHooksAsTheyWere) {
  const Model& model = tm_->model;
  Session session(model);
  // A caller's scaling acts on both passes; a counting hook shows it stays registered.
  session.scale_neurons(1, {2}, 3.0f);
  int64_t calls = 0;
  session.add_hook(HookPoint::ResidualIn, 0, [&](int64_t, HookPoint, float*, int64_t, int64_t, int64_t) { ++calls; });
  session.forward({2, 3});  // a stale cache the probe must reset
  calls = 0;

  const ProbeResult probe = probe_next_token(session, prompt_, {{0, 5, std::nullopt}}, {{0, 5}});
  EXPECT_EQ(calls, 2);
  EXPECT_EQ(session.position(), 0);
  Session scaled(model);
  scaled.scale_neurons(1, {2}, 3.0f);
  const std::vector<double> scaled_plain = next_token(scaled);
  EXPECT_LT(max_abs_diff(probe.without, scaled_plain), kSameRun);
  scaled.ablate_neurons(0, {5});
  EXPECT_LT(max_abs_diff(probe.with, next_token(scaled)), kSameRun);

  // The ablation is gone again: a plain pass is the scaled model's.
  EXPECT_LT(max_abs_diff(next_token(session), scaled_plain), kSameRun);
  EXPECT_EQ(calls, 3);

  // A bad intervention fails after the plain pass; nothing of the probe's stays.
  const int64_t n_layers = model.config().n_layers;
  EXPECT_THROW(probe_next_token(session, prompt_, {{0, 5, std::nullopt}, {n_layers, 0, std::nullopt}}, {{1, 1}}),
               Error);
  EXPECT_THROW(probe_next_token(session, prompt_, {}, {{0, model.config().d_ffn}}), Error);
  EXPECT_EQ(session.position(), 0);
  EXPECT_LT(max_abs_diff(next_token(session), scaled_plain), kSameRun);
}

}  // namespace
}  // namespace neuronlens

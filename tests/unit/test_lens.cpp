// The logit lens (neuronlens/lens.h) on the tiny F32 Llama, against the
// Session's own output: its last layer's rows must be the model's next-token
// distribution at every position, and layer L's rows what the model would
// predict if every later layer added nothing (their attention and MLP outputs
// zeroed by hooks), which is the final norm and LM head of layer L's residual
// stream computed by the forward pass instead of the decoder.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "neuronlens/decode.h"
#include "neuronlens/error.h"
#include "neuronlens/lens.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "neuronlens/sampling.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

constexpr int kTopK = 8;
// Log-probabilities of the decoder (float64 norm, float32 head product
// re-scored in float64) against the Session's float32 forward pass: the tiny
// model's logits are ~0.1-0.5 over 64-wide dot products, so both sit within
// ~1e-6 of the exact value; 2e-5 is test_runtime.cpp's tolerance for the
// same model's logits against a float64 reference.
constexpr double kTolerance = 2e-5;

const std::vector<int32_t> kTokens = {1, 17, 42, 5, 99, 3, 64};

// Checks one lens row against the full distribution p [V] it must be the
// top-k of: the probabilities of the ids it names, and, position by position,
// the k largest of p (so a different id is allowed only where two
// probabilities tie within the tolerance).
void expect_row_is_top_k(const NeuronDecoding& row, const std::vector<double>& p, const std::string& where) {
  ASSERT_EQ(row.top_ids.size(), static_cast<size_t>(kTopK)) << where;
  std::vector<double> sorted = p;
  std::sort(sorted.begin(), sorted.end(), std::greater<>());
  const std::vector<int32_t> expected_ids = top_token_ids(p, kTopK);
  for (size_t k = 0; k < row.top_ids.size(); ++k) {
    const double log_p = row.top_logits[k] - row.logsumexp;
    const int32_t id = row.top_ids[k];
    EXPECT_NEAR(log_p, std::log(p[static_cast<size_t>(id)]), kTolerance) << where << " rank " << k;
    EXPECT_NEAR(log_p, std::log(sorted[k]), kTolerance) << where << " rank " << k;
    const bool clear_gap = std::log(sorted[k]) - std::log(sorted[k + 1]) > 2 * kTolerance &&
                           (k == 0 || std::log(sorted[k - 1]) - std::log(sorted[k]) > 2 * kTolerance);
    if (clear_gap) {
      EXPECT_EQ(id, expected_ids[k]) << where << " rank " << k;
    }
  }
}

// softmax of every row of logits [n, V].
std::vector<std::vector<double>> row_probabilities(const std::vector<float>& logits, int64_t vocab) {
  std::vector<std::vector<double>> rows;
  for (size_t start = 0; start < logits.size(); start += static_cast<size_t>(vocab)) {
    rows.push_back(softmax_probabilities(std::span<const float>(logits.data() + start, static_cast<size_t>(vocab))));
  }
  return rows;
}

TEST(LogitLens, EveryLayerIsTheModelWithTheLaterLayersSilenced) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const ModelConfig& config = model.config();
  ASSERT_GE(config.n_layers, 2);
  const LensResult lens = logit_lens(model, kTokens, kTopK);
  ASSERT_EQ(lens.n_layers, config.n_layers);
  ASSERT_EQ(lens.n_positions, static_cast<int64_t>(kTokens.size()));
  ASSERT_EQ(lens.decoded.size(), static_cast<size_t>(lens.n_layers * lens.n_positions));

  double worst = 0;
  for (int64_t layer = 0; layer < config.n_layers; ++layer) {
    Session session(model);
    // x += 0 in every later layer: the logits become head(norm(ResidualOut of `layer`)).
    auto silence = [](int64_t, HookPoint, float* data, int64_t n, int64_t width, int64_t) {
      std::fill(data, data + n * width, 0.0f);
    };
    for (int64_t later = layer + 1; later < config.n_layers; ++later) {
      session.add_hook(HookPoint::AttnOut, later, silence);
      session.add_hook(HookPoint::MlpOut, later, silence);
    }
    const auto p = row_probabilities(session.forward(kTokens, LogitsFor::AllTokens), config.vocab_size);
    for (int64_t pos = 0; pos < lens.n_positions; ++pos) {
      const NeuronDecoding& row = lens.at(layer, pos);
      expect_row_is_top_k(row, p[static_cast<size_t>(pos)],
                          "layer " + std::to_string(layer) + " position " + std::to_string(pos));
      for (size_t k = 0; k < row.top_ids.size(); ++k) {
        const double log_p = row.top_logits[k] - row.logsumexp;
        const double expected = std::log(p[static_cast<size_t>(pos)][static_cast<size_t>(row.top_ids[k])]);
        worst = std::max(worst, std::fabs(log_p - expected));
      }
    }
  }
  std::printf("logit lens vs the session's forward: max |log p diff| = %.3g\n", worst);
}

TEST(LogitLens, OnASessionItSeesTheSessionsHooksAndLeavesThemAsTheyWere) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const ModelConfig& config = model.config();
  DecodeSettings settings;
  settings.top_k = kTopK;
  settings.precision = Precision::Exact;  // the tolerances below are the exact path's
  const LmHeadDecoder decoder(model, settings);

  // The caller's clamp acts on the lens's pass: the last layer is the
  // clamped model's prediction.
  Session session(model);
  session.clamp_neurons(config.n_layers - 1, {3, 7}, 4.0f);
  int64_t caller_hook_calls = 0;
  session.add_hook(HookPoint::ResidualIn, 0, [&](int64_t, HookPoint, float*, int64_t, int64_t, int64_t) {
    ++caller_hook_calls;
  });
  session.forward({2, 3});  // a stale cache the lens must reset
  const LensResult lens = logit_lens(session, decoder, kTokens);
  EXPECT_EQ(caller_hook_calls, 2);
  EXPECT_EQ(session.position(), static_cast<int64_t>(kTokens.size()));

  Session clamped(model);
  clamped.clamp_neurons(config.n_layers - 1, {3, 7}, 4.0f);
  const auto p = row_probabilities(clamped.forward(kTokens, LogitsFor::AllTokens), config.vocab_size);
  for (int64_t pos = 0; pos < lens.n_positions; ++pos) {
    expect_row_is_top_k(lens.at(config.n_layers - 1, pos), p[static_cast<size_t>(pos)],
                        "clamped, position " + std::to_string(pos));
  }

  // The lens's recording hooks are gone, the caller's are not: a second
  // pass gives the clamped logits again and calls the caller's hook once.
  session.reset();
  const auto again = row_probabilities(session.forward(kTokens, LogitsFor::AllTokens), config.vocab_size);
  ASSERT_EQ(again.size(), p.size());
  double most = 0;
  for (size_t pos = 0; pos < p.size(); ++pos) {
    for (size_t t = 0; t < p[pos].size(); ++t) most = std::max(most, std::fabs(again[pos][t] - p[pos][t]));
  }
  EXPECT_LT(most, 1e-9);
  EXPECT_EQ(caller_hook_calls, 3);
}

TEST(LogitLens, RefusesADecoderThatIsNotTheModelsOutput) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  DecodeSettings raw;
  raw.norm = NormMode::None;
  Session session(model);
  EXPECT_THROW(logit_lens(session, LmHeadDecoder(model, raw), kTokens), Error);
  EXPECT_THROW(logit_lens(model, kTokens, 0), Error);
  EXPECT_THROW(logit_lens(model, {}, kTopK), Error);
  EXPECT_THROW(logit_lens(model, {static_cast<int32_t>(model.config().vocab_size)}, kTopK), Error);
}

}  // namespace
}  // namespace neuronlens

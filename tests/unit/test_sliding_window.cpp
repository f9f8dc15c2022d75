// Sliding-window attention (Mistral 7B v0.1: config.json "sliding_window").
//
// tiny_mistral_hf (gen_tiny_families.py) is the tiny Llama's weights with a
// window of 4 tokens; gen_forward_reference.py runs the float64 NumPy forward
// with Hugging Face's mask (key j visible from query i when i - 4 < j <= i)
// on sequences of 1, 10 and 33 tokens. Checked here: the loader reads the
// window, the logits match, the window really changes them (against the
// no-window tiny Llama reference on the same weights), the KV cache gives the
// same answer token by token, and the attention kernel's edge cases (Qwen's
// use_sliding_window: test_rope_variants.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "runtime/attention.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

using Logits = std::vector<std::vector<double>>;  // [position][vocabulary]

constexpr int64_t kWindow = 4;
constexpr double kTolerance = 2e-5;  // as test_runtime.cpp's tiny-model tolerance

nlohmann::json read_json(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("cannot open " + path);
  return nlohmann::json::parse(in);
}

std::vector<std::pair<std::vector<int32_t>, Logits>> reference(const std::string& name) {
  std::vector<std::pair<std::vector<int32_t>, Logits>> sequences;
  const nlohmann::json document = read_json(testing::fixture_path("forward_reference/" + name));
  for (const auto& seq : document.at("sequences")) {
    sequences.emplace_back(seq.at("tokens").get<std::vector<int32_t>>(), seq.at("logits").get<Logits>());
  }
  return sequences;
}

double max_abs_diff(const std::vector<float>& got, const Logits& expected, size_t from, size_t to) {
  const size_t v = expected.front().size();
  double worst = 0;
  for (size_t t = from; t < to; ++t) {
    for (size_t i = 0; i < v; ++i) worst = std::max(worst, std::fabs(double(got[t * v + i]) - expected[t][i]));
  }
  return worst;
}

TEST(SlidingWindow, LoaderReadsMistralWindow) {
  EXPECT_EQ(Model::load(testing::fixture_path("tiny_mistral_hf")).config().sliding_window, kWindow);
  EXPECT_EQ(Model::load(testing::fixture_path("tiny_llama_hf")).config().sliding_window, 0);
  // qwen2 ships a sliding_window but leaves it off (use_sliding_window false).
  EXPECT_EQ(Model::load(testing::fixture_path("tiny_qwen2_hf")).config().sliding_window, 0);
}

TEST(SlidingWindow, TinyMistralMatchesFloat64Reference) {
  const Model model = Model::load(testing::fixture_path("tiny_mistral_hf"));
  Session session(model);
  const auto mistral = reference("tiny_mistral.json");
  const auto llama = reference("tiny_llama.json");  // same weights, no window
  ASSERT_EQ(mistral.size(), 3u);
  ASSERT_EQ(mistral.size(), llama.size());
  double worst = 0, window_effect = 0;
  for (size_t s = 0; s < mistral.size(); ++s) {
    const auto& [tokens, expected] = mistral[s];
    ASSERT_EQ(tokens, llama[s].first);
    session.reset();
    const std::vector<float> logits = session.forward(tokens);
    ASSERT_EQ(logits.size(), tokens.size() * expected.front().size());
    worst = std::max(worst, max_abs_diff(logits, expected, 0, tokens.size()));
    // Up to the window's length nothing is cut off: the no-window logits.
    const size_t within = std::min<size_t>(tokens.size(), kWindow);
    EXPECT_LT(max_abs_diff(logits, llama[s].second, 0, within), kTolerance) << "sequence " << s;
    if (tokens.size() > kWindow) {
      window_effect = std::max(window_effect, max_abs_diff(logits, llama[s].second, within, tokens.size()));
    }
  }
  EXPECT_LT(worst, kTolerance);
  // Past the window the logits must move well beyond the tolerance, or this
  // test could not tell a window from none.
  EXPECT_GT(window_effect, 100 * kTolerance);
  std::printf("tiny_mistral_hf vs float64 reference: max |logit diff| = %.3g (window moves logits by %.3g)\n", worst,
              window_effect);
}

TEST(SlidingWindow, KvCacheTokenByTokenEqualsOneBatch) {
  const Model model = Model::load(testing::fixture_path("tiny_mistral_hf"));
  const std::vector<int32_t> tokens = reference("tiny_mistral.json").back().first;  // 33 tokens
  Session session(model);
  const std::vector<float> batch = session.forward(tokens);
  session.reset();
  std::vector<float> one_by_one, chunks;
  for (const int32_t token : tokens) {
    const std::vector<float> row = session.forward({token});
    one_by_one.insert(one_by_one.end(), row.begin(), row.end());
  }
  session.reset();
  for (size_t begin = 0; begin < tokens.size(); begin += 3) {  // chunks that straddle the window
    const std::vector<int32_t> chunk(tokens.begin() + static_cast<std::ptrdiff_t>(begin),
                                     tokens.begin() + static_cast<std::ptrdiff_t>(std::min(begin + 3, tokens.size())));
    const std::vector<float> rows = session.forward(chunk);
    chunks.insert(chunks.end(), rows.begin(), rows.end());
  }
  ASSERT_EQ(one_by_one.size(), batch.size());
  ASSERT_EQ(chunks.size(), batch.size());
  double worst = 0;
  for (size_t i = 0; i < batch.size(); ++i) {
    worst = std::max({worst, double(std::fabs(batch[i] - one_by_one[i])), double(std::fabs(batch[i] - chunks[i]))});
  }
  EXPECT_LT(worst, 1e-6);
}

// The kernel alone: window 1 sees only the query's own value; a window at
// least as long as the sequence is no window.
TEST(SlidingWindow, AttentionKernelEdges) {
  constexpr int64_t kTokens = 6, kHeads = 2, kKvHeads = 1, kHeadDim = 4;
  std::vector<float> q(kTokens * kHeads * kHeadDim), keys(kTokens * kKvHeads * kHeadDim), values(keys.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.7f * float(i));
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i] = std::cos(0.3f * float(i));
    values[i] = float(i) * 0.01f - 0.1f;
  }
  std::vector<float> full(q.size()), windowed(q.size()), own(q.size());
  const runtime::KvLayerView kv{KvCacheType::F32, keys.data(), values.data()};
  runtime::causal_attention(q.data(), kTokens, 0, kv, kHeads, kKvHeads, kHeadDim, full.data());
  runtime::causal_attention(q.data(), kTokens, 0, kv, kHeads, kKvHeads, kHeadDim, windowed.data(), kTokens);
  EXPECT_EQ(full, windowed);
  runtime::causal_attention(q.data(), kTokens, 0, kv, kHeads, kKvHeads, kHeadDim, own.data(), 1);
  for (int64_t t = 0; t < kTokens; ++t) {
    for (int64_t h = 0; h < kHeads; ++h) {
      for (int64_t e = 0; e < kHeadDim; ++e) {
        EXPECT_FLOAT_EQ(own[size_t((t * kHeads + h) * kHeadDim + e)], values[size_t(t * kHeadDim + e)]);
      }
    }
  }
}

}  // namespace
}  // namespace neuronlens

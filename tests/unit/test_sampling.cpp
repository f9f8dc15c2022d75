// Token sampling (src/runtime/sampling.cpp) on hand-made logits.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/sampling.h"

namespace neuronlens {
namespace {

const std::vector<float> kLogits = {0.5f, 2.0f, -1.0f, 1.0f, 2.0f, 0.0f};

TEST(Sampling, GreedyIsArgmaxLowestIdOnTies) {
  EXPECT_EQ(argmax_token(kLogits), 1);
  Sampler greedy(SamplingOptions{});
  for (int i = 0; i < 5; ++i) EXPECT_EQ(greedy.sample(kLogits), 1);
  EXPECT_THROW(argmax_token({}), Error);
}

TEST(Sampling, TopKOneIsGreedy) {
  SamplingOptions o;
  o.temperature = 1.5;
  o.top_k = 1;
  o.seed = 7;
  Sampler s(o);
  const std::vector<float> logits = {0.1f, 0.3f, 3.0f, 2.9f};
  for (int i = 0; i < 50; ++i) EXPECT_EQ(s.sample(logits), 2);
}

TEST(Sampling, TopPCutoff) {
  // Probabilities 0.5, 0.3, 0.2 (logits are their logs).
  const std::vector<float> logits = {std::log(0.2f), std::log(0.5f), std::log(0.3f)};
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 3;
  o.top_p = 0.5;  // 0.5 alone reaches it: only token 1
  Sampler only_first(o);
  for (int i = 0; i < 200; ++i) EXPECT_EQ(only_first.sample(logits), 1);
  o.top_p = 0.75;  // 0.5 + 0.3 needed: tokens 1 and 2, never 0
  Sampler two(o);
  int seen[3] = {0, 0, 0};
  for (int i = 0; i < 2000; ++i) ++seen[two.sample(logits)];
  EXPECT_EQ(seen[0], 0);
  EXPECT_GT(seen[1], 0);
  EXPECT_GT(seen[2], 0);
  EXPECT_NEAR(seen[1] / 2000.0, 0.5 / 0.8, 0.05);
}

TEST(Sampling, SameSeedSameSequence) {
  SamplingOptions o;
  o.temperature = 1.0;
  o.seed = 42;
  Sampler a(o), b(o);
  std::vector<int32_t> sa, sb;
  for (int i = 0; i < 100; ++i) {
    sa.push_back(a.sample(kLogits));
    sb.push_back(b.sample(kLogits));
  }
  EXPECT_EQ(sa, sb);
  o.seed = 43;
  Sampler c(o);
  std::vector<int32_t> sc;
  for (int i = 0; i < 100; ++i) sc.push_back(c.sample(kLogits));
  EXPECT_NE(sa, sc);
}

TEST(Sampling, FrequenciesFollowTheSoftmax) {
  SamplingOptions o;
  o.temperature = 2.0;
  o.seed = 1234;
  Sampler s(o);
  std::vector<double> p(kLogits.size());
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp(kLogits[i] / 2.0);
  constexpr int kDraws = 100000;
  std::vector<int> count(kLogits.size());
  for (int i = 0; i < kDraws; ++i) ++count[static_cast<size_t>(s.sample(kLogits))];
  for (size_t i = 0; i < p.size(); ++i) {
    // Binomial standard deviation is at most sqrt(0.25 / 1e5) = 0.0016.
    EXPECT_NEAR(count[i] / double(kDraws), p[i] / total, 0.008) << "token " << i;
  }
}

TEST(Sampling, TopKLimitsTheCandidates) {
  SamplingOptions o;
  o.temperature = 1.0;
  o.top_k = 2;
  Sampler s(o);
  for (int i = 0; i < 500; ++i) {
    const int32_t t = s.sample(kLogits);
    EXPECT_TRUE(t == 1 || t == 4) << t;  // the two logits of 2.0
  }
}

TEST(Sampling, BadOptions) {
  SamplingOptions o;
  o.top_p = 0;
  EXPECT_THROW(Sampler{o}, Error);
  o.top_p = 1.5;
  EXPECT_THROW(Sampler{o}, Error);
  o = {};
  o.top_k = -1;
  EXPECT_THROW(Sampler{o}, Error);
}

}  // namespace
}  // namespace neuronlens

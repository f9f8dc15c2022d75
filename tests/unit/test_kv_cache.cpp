// The KV cache in float32 and in half precision (runtime/kv_cache.h): halves
// are IEEE round-to-nearest of the float32 keys/values, attention over them
// equals attention over those rounded values widened to float32, and a whole
// model runs on a half cache within the rounding's effect, in half the bytes.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "io/half.h"
#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "runtime/attention.h"
#include "runtime/kv_cache.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

TEST(KvCache, HalvesAreTheRoundedValuesAndAttentionReadsThemExactly) {
  constexpr int64_t kTokens = 7, kHeads = 4, kKvHeads = 2, kHeadDim = 8, kWidth = kKvHeads * kHeadDim;
  std::vector<float> q(kTokens * kHeads * kHeadDim), keys(kTokens * kWidth), values(keys.size());
  for (size_t i = 0; i < q.size(); ++i) q[i] = std::sin(0.37f * float(i));
  for (size_t i = 0; i < keys.size(); ++i) {
    keys[i] = 3.0f * std::cos(0.11f * float(i)) + 1e-3f;
    values[i] = 0.013f * float(i) - 0.4f;
  }
  runtime::KvCache half(KvCacheType::F16, 1, kWidth), full(KvCacheType::F32, 1, kWidth);
  // In two calls, as a prompt and then a generated token arrive.
  half.store(0, 0, kTokens - 1, keys.data(), values.data());
  half.store(0, kTokens - 1, 1, keys.data() + (kTokens - 1) * kWidth, values.data() + (kTokens - 1) * kWidth);
  const runtime::KvLayerView h = half.layer(0);
  std::vector<float> widened_keys(keys.size()), widened_values(values.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    const uint16_t k = static_cast<const uint16_t*>(h.keys)[i], v = static_cast<const uint16_t*>(h.values)[i];
    ASSERT_EQ(k, fp32_to_fp16(keys[i])) << i;
    ASSERT_EQ(v, fp32_to_fp16(values[i])) << i;
    widened_keys[i] = fp16_to_fp32(k);
    widened_values[i] = fp16_to_fp32(v);
    EXPECT_LE(std::fabs(widened_keys[i] - keys[i]), std::fabs(keys[i]) * 0x1p-11f);
  }
  full.store(0, 0, kTokens - 1, widened_keys.data(), widened_values.data());
  full.store(0, kTokens - 1, 1, widened_keys.data() + (kTokens - 1) * kWidth,
             widened_values.data() + (kTokens - 1) * kWidth);
  std::vector<float> from_half(q.size()), from_widened(q.size());
  runtime::causal_attention(q.data(), kTokens, 0, h, kHeads, kKvHeads, kHeadDim, from_half.data());
  runtime::causal_attention(q.data(), kTokens, 0, full.layer(0), kHeads, kKvHeads, kHeadDim, from_widened.data());
  EXPECT_EQ(0, std::memcmp(from_half.data(), from_widened.data(), q.size() * sizeof(float)));
  EXPECT_EQ(half.bytes() * 2, full.bytes());
  EXPECT_EQ(parse_kv_cache_type("f16"), KvCacheType::F16);
  EXPECT_THROW(parse_kv_cache_type("q8"), Error);
}

// The default model with a half cache: the next-token probabilities of a
// prompt and of three generated steps stay within 0.06 of the float32
// cache's (the tolerance the llama.cpp comparison uses; llama.cpp's default
// cache is F16), yet are not identical (the half path ran), in half the bytes.
TEST(KvCache, DefaultModelOnAHalfCache) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  const Model model = Model::load(path);
  const int64_t v = model.config().vocab_size;
  Session full(model), half(model, SessionOptions{WeightFormat::Quantized, KvCacheType::F16});
  const std::vector<int32_t> prompt = {1, 504, 3458, 282, 4649, 314, 253, 1345, 30, 2, 17, 9000, 442, 33};
  std::vector<float> a = full.forward(prompt, LogitsFor::LastToken), b = half.forward(prompt, LogitsFor::LastToken);
  double worst = 0, worst_logit = 0;
  for (int step = 0; step < 4; ++step) {
    const double ma = *std::max_element(a.begin(), a.end()), mb = *std::max_element(b.begin(), b.end());
    double sa = 0, sb = 0;
    for (int64_t i = 0; i < v; ++i) sa += std::exp(a[size_t(i)] - ma), sb += std::exp(b[size_t(i)] - mb);
    for (int64_t i = 0; i < v; ++i) {
      worst = std::max(worst, std::fabs(std::exp(a[size_t(i)] - ma) / sa - std::exp(b[size_t(i)] - mb) / sb));
      worst_logit = std::max(worst_logit, double(std::fabs(a[size_t(i)] - b[size_t(i)])));
    }
    const auto next = static_cast<int32_t>(std::max_element(a.begin(), a.end()) - a.begin());
    a = full.forward({next});
    b = half.forward({next});
  }
  EXPECT_LT(worst, 0.06);
  EXPECT_GT(worst_logit, 0.0);
  EXPECT_EQ(half.cache_bytes() * 2, full.cache_bytes());
  std::printf("default model, F16 vs F32 KV cache: max |p diff| = %.4f, max |logit diff| = %.4f\n", worst, worst_logit);
}

}  // namespace
}  // namespace neuronlens

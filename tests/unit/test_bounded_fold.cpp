// The decode's error bounds and candidate selection (decode/bounded_fold.h,
// decode/logit_backend_cpu.cpp) on synthetic heads, against a float64
// decode of the same float32 vectors and rows:
//   - every bulk logit of every backend lies within the bound it is given;
//   - adversarial near-ties, tokens whose exact logits differ by less than
//     the bf16 error (so the bulk product ranks them wrongly, or ties them),
//     still come out in the exact order;
//   - logsumexp and entropy lie within the bounds each decoding reports.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/logit_panels.h"
#include "decode/bounded_fold.h"
#include "decode/logit_backend.h"
#include "neuronlens/decode.h"
#include "random_matrix.h"

namespace neuronlens::decode_detail {
namespace {

using neuronlens::testing::random_matrix;

// A float64 decode of one vector: every logit, logsumexp, entropy and the
// top-k (higher logit first, then lower id).
struct ExactDecode {
  std::vector<double> z;
  double logsumexp = 0, entropy = 0;
  std::vector<int32_t> top;
};

ExactDecode exact_decode(const float* v, const std::vector<float>& head, int64_t vocab, int64_t d, int k) {
  ExactDecode e;
  e.z.resize(static_cast<size_t>(vocab));
  for (int64_t t = 0; t < vocab; ++t) {
    double s = 0;
    for (int64_t j = 0; j < d; ++j) s += static_cast<double>(v[j]) * head[static_cast<size_t>(t * d + j)];
    e.z[static_cast<size_t>(t)] = s;
  }
  const double m = *std::max_element(e.z.begin(), e.z.end());
  double sum = 0;
  for (double z : e.z) sum += std::exp(z - m);
  e.logsumexp = m + std::log(sum);
  for (double z : e.z) e.entropy -= std::exp(z - e.logsumexp) * (z - e.logsumexp);
  std::vector<int32_t> order(static_cast<size_t>(vocab));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    const double za = e.z[static_cast<size_t>(a)], zb = e.z[static_cast<size_t>(b)];
    return za > zb || (za == zb && a < b);
  });
  e.top.assign(order.begin(), order.begin() + k);
  return e;
}

std::vector<std::string> runnable_backends() {
  std::vector<std::string> names;
  for (const DecodeBackendInfo& b : decode_backend_names()) {
    if (b.runs_here) names.push_back(b.name);
  }
  return names;
}

std::unique_ptr<LogitBackend> backend(const LmHead& head, const std::string& name) {
  DecodeSettings s;
  s.backend = name;
  return make_logit_backend(head, s);
}

// Records every tile a backend hands over.
struct RecordingSink final : TileSink {
  struct Tile {
    int64_t i, v0;
    std::vector<float> logits;
    float bound;
  };
  std::vector<Tile> tiles;
  void add(int64_t i, const float* logits, int64_t cols, int64_t v0, float bound) override {
    tiles.push_back({i, v0, std::vector<float>(logits, logits + cols), bound});
  }
};

TEST(DecodeBounds, EveryBulkLogitIsWithinItsBound) {
  constexpr int64_t vocab = 700, d = 129, n = 100;  // a partial last tile and block
  std::vector<float> head = random_matrix(vocab, d, 5), vectors = random_matrix(n, d, 6);
  for (float& x : head) x *= 0.3f;
  const LmHead h{head.data(), vocab, d};
  for (const std::string& name : runnable_backends()) {
    SCOPED_TRACE(name);
    for (bool prepared : {false, true}) {
      const auto b = backend(h, name);
      if (prepared) b->prepare();
      RecordingSink sink;
      b->fold(vectors.data(), n, sink);
      ASSERT_EQ(sink.tiles.size(), static_cast<size_t>(n * ((vocab + 255) / 256)));
      double worst = 0;  // largest |error| / bound seen
      for (const auto& t : sink.tiles) {
        for (size_t j = 0; j < t.logits.size(); ++j) {
          double exact = 0;
          const int64_t token = t.v0 + static_cast<int64_t>(j);
          for (int64_t k = 0; k < d; ++k) {
            exact += static_cast<double>(vectors[static_cast<size_t>(t.i * d + k)]) * head[static_cast<size_t>(token * d + k)];
          }
          const double err = std::abs(t.logits[j] - exact);
          ASSERT_LE(err, t.bound) << "vector " << t.i << " token " << token << (prepared ? " (prepared)" : "");
          worst = std::max(worst, err / t.bound);
        }
      }
      // Not vacuous: the bf16 errors use a good part of their bound.
      if (b->precision() == Precision::Bf16) {
        EXPECT_GT(worst, 0.02) << name;
      }
    }
  }
}

// Tokens 0..199 of the head are 1 + c_t 2^-16 in every element, the c_t a
// shuffle of 0..199: exact logits a few 2^-16 d apart, far inside the bf16
// error, and in bf16 all of them round to 1, so the bulk product ties them
// (and would rank them by id). The other 800 tokens are random and lower.
TEST(DecodeBounds, NearTiesBelowTheBf16ErrorComeOutInTheExactOrder) {
  constexpr int64_t vocab = 1000, d = 64;
  constexpr int kTop = 20;
  std::vector<float> head = random_matrix(vocab, d, 8);
  for (float& x : head) x *= 0.05f;
  std::vector<int> c(200);
  std::iota(c.begin(), c.end(), 0);
  std::shuffle(c.begin(), c.end(), std::mt19937(9));
  for (int64_t t = 0; t < 200; ++t) {
    for (int64_t j = 0; j < d; ++j) head[static_cast<size_t>(t * d + j)] = 1.0f + static_cast<float>(c[static_cast<size_t>(t)]) * std::ldexp(1.0f, -16);
  }
  std::vector<float> vectors(static_cast<size_t>(3 * d), 1.0f);  // a = 1: logits d (1 + c 2^-16)
  for (int64_t j = 0; j < d; ++j) vectors[static_cast<size_t>(d + j)] = 0.5f + 0.001f * static_cast<float>(j);
  for (int64_t j = 0; j < d; ++j) vectors[static_cast<size_t>(2 * d + j)] = j % 2 ? 1.0f : 0.999f;
  const LmHead h{head.data(), vocab, d};
  for (const std::string& name : runnable_backends()) {
    SCOPED_TRACE(name);
    const auto b = backend(h, name);
    BoundedFold fold(3, kTop, 0.0);
    b->fold(vectors.data(), 3, fold);
    for (int64_t i = 0; i < 3; ++i) {
      NeuronDecoding got;
      fold.finish(i, vectors.data() + i * d, h, got);
      const ExactDecode want = exact_decode(vectors.data() + i * d, head, vocab, d, kTop);
      EXPECT_EQ(got.top_ids, want.top);
      for (int r = 0; r < kTop; ++r) {
        EXPECT_DOUBLE_EQ(got.top_logits[static_cast<size_t>(r)], want.z[static_cast<size_t>(want.top[static_cast<size_t>(r)])]);
      }
      EXPECT_LE(std::abs(got.logsumexp - want.logsumexp), got.logsumexp_error);
      EXPECT_LE(std::abs(got.entropy - want.entropy), got.entropy_error);
    }
  }
  // The test bites: bf16 rounds every near-tie row to the same values, so
  // its bulk logits cannot order them.
  for (int64_t t = 1; t < 200; ++t) {
    for (int64_t j = 0; j < d; ++j) {
      ASSERT_EQ(cpu::to_bf16(head[static_cast<size_t>(t * d + j)]), cpu::to_bf16(1.0f));
    }
  }
}

}  // namespace
}  // namespace neuronlens::decode_detail

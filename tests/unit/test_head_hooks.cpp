// Attention-head hooks (issue 15, part 2): attn_z, the recorded attention
// pattern, and head ablation / scaling, each checked against what it must
// equal by the block's own algebra: W_O · z is the attention output, z is
// the pattern-weighted sum of the values, and ablating every head of a layer
// is zeroing that layer's attention output.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "json_fixture.h"
#include "neuronlens/error.h"
#include "neuronlens/interventions.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "neuronlens/tensor.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Ids every tiny model has (the family fixtures' vocabularies hold 318).
const std::vector<int32_t> kTokens = {1, 300, 45, 12, 200, 7, 7, 99, 260, 3, 17, 310, 2};

double max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  EXPECT_EQ(a.size(), b.size());
  double m = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) m = std::max(m, std::fabs(double(a[i]) - double(b[i])));
  return m;
}

std::vector<float> dequantized(const Model& model, WeightKind kind, int64_t layer) {
  const TensorView& t = model.weight(kind, layer);
  std::vector<float> out(sz(t.elements()));
  dequantize_rows(t, 0, t.rows(), out.data());
  return out;
}

// tiny_llama (grouped-query, no biases), the qwen3 and gemma3 families (q/k
// norms; gemma3 with post-norms and sliding windows).
std::vector<std::string> head_models() {
  return {testing::fixture_path("tiny_llama.gguf"), testing::committed_fixture("families/qwen3/model.gguf"),
          testing::committed_fixture("families/gemma3/model.gguf")};
}

TEST(HeadHooks, AblatingEveryHeadOfALayerEqualsZeroingItsAttentionOutput) {
  for (const std::string& path : head_models()) {
    const Model model = Model::load(path);
    const ModelConfig& c = model.config();
    Session session(model);
    const std::vector<float> baseline = session.forward(kTokens);
    std::vector<int64_t> every_head(sz(c.n_heads));
    for (int64_t h = 0; h < c.n_heads; ++h) every_head[sz(h)] = h;
    for (int64_t layer = 0; layer < c.n_layers; ++layer) {
      session.reset();
      HookId id = session.ablate_heads(layer, every_head);
      const std::vector<float> ablated = session.forward(kTokens);
      session.remove_hook(id);

      session.reset();
      id = session.add_hook(HookPoint::AttnOut, layer, [](int64_t, HookPoint, float* data, int64_t n, int64_t width,
                                                          int64_t) { std::fill_n(data, n * width, 0.0f); });
      const std::vector<float> zeroed = session.forward(kTokens);
      session.remove_hook(id);
      EXPECT_EQ(ablated, zeroed) << path << " layer " << layer;
      EXPECT_GT(max_abs_diff(ablated, baseline), 1e-4) << path << " layer " << layer << ": ablation had no effect";

      // Factor 0 is the ablation; factor 1 is the model; one head alone
      // changes less than all of them.
      session.reset();
      id = session.scale_heads(layer, every_head, 0.0f);
      EXPECT_EQ(session.forward(kTokens), ablated);
      session.remove_hook(id);
      session.reset();
      id = session.scale_heads(layer, every_head, 1.0f);
      EXPECT_EQ(session.forward(kTokens), baseline);
      session.remove_hook(id);
    }
  }
}

TEST(HeadHooks, AttnZThroughTheOutputProjectionIsTheAttentionOutput) {
  // Families without a post-attention norm: there AttnOut is W_O · z.
  for (const std::string& path :
       {testing::fixture_path("tiny_llama.gguf"), testing::committed_fixture("families/qwen3/model.gguf")}) {
    const Model model = Model::load(path);
    const ModelConfig& c = model.config();
    ASSERT_FALSE(c.post_norms);
    const int64_t d = c.d_model, qw = c.n_heads * c.head_dim;
    Session session(model);
    for (int64_t layer = 0; layer < c.n_layers; ++layer) {
      const auto z = session.record(HookPoint::AttnZ, layer);
      const auto out = session.record(HookPoint::AttnOut, layer);
      session.reset();
      session.forward(kTokens);
      session.clear_hooks();
      ASSERT_EQ(z->width, qw);
      ASSERT_EQ(z->rows(), static_cast<int64_t>(kTokens.size()));
      const std::vector<float> w_o = dequantized(model, WeightKind::AttnOutput, layer);  // [d, n_heads * head_dim]
      double worst = 0, largest = 0;
      for (int64_t t = 0; t < z->rows(); ++t) {
        for (int64_t e = 0; e < d; ++e) {
          double sum = 0;
          for (int64_t j = 0; j < qw; ++j) sum += double(w_o[sz(e * qw + j)]) * z->values[sz(t * qw + j)];
          worst = std::max(worst, std::fabs(sum - out->values[sz(t * d + e)]));
          largest = std::max(largest, std::fabs(sum));
        }
      }
      EXPECT_LT(worst, 1e-5 * std::max(1.0, largest)) << path << " layer " << layer;
      EXPECT_GT(largest, 1e-3);
    }
  }
}

// Layer 0's values, computed here from the embedding: v = W_V · rmsnorm(x) γ
// [n, n_kv_heads * head_dim]; then each head's z must be the pattern-weighted
// sum of its KV head's values.
TEST(HeadHooks, AttentionPatternWeighsTheValuesIntoZ) {
  for (const std::string& path : head_models()) {
    const Model model = Model::load(path);
    const ModelConfig& c = model.config();
    const int64_t d = c.d_model, hd = c.head_dim, kvw = c.n_kv_heads * hd, qw = c.n_heads * hd;
    const auto n = static_cast<int64_t>(kTokens.size());
    Session session(model);
    const auto x = session.record(HookPoint::ResidualIn, 0);
    const auto z = session.record(HookPoint::AttnZ, 0);
    HookId pattern_id = 0;
    const auto pattern = session.record_attention(0, &pattern_id);
    // In two calls: the second's queries see the first's keys from the cache.
    session.forward({kTokens.begin(), kTokens.begin() + 5});
    session.forward({kTokens.begin() + 5, kTokens.end()});
    ASSERT_EQ(pattern->calls.size(), 2u);
    EXPECT_EQ(pattern->n_heads, c.n_heads);
    EXPECT_EQ(pattern->calls[1].first_position, 5);
    EXPECT_EQ(pattern->calls[1].n_tokens, n - 5);
    EXPECT_EQ(pattern->calls[1].n_keys, n);

    std::vector<double> v(sz(n * kvw));
    if (c.pre_norms) {
      const std::vector<float> gamma = dequantized(model, WeightKind::AttnNorm, 0);
      const std::vector<float> w_v = dequantized(model, WeightKind::AttnV, 0);  // [kvw, d]
      for (int64_t t = 0; t < n; ++t) {
        const float* row = x->values.data() + t * d;
        double ms = 0;
        for (int64_t e = 0; e < d; ++e) ms += double(row[e]) * row[e];
        const double inv = 1.0 / std::sqrt(ms / double(d) + c.rms_norm_eps);
        for (int64_t o = 0; o < kvw; ++o) {
          double sum = 0;
          for (int64_t e = 0; e < d; ++e) sum += double(w_v[sz(o * d + e)]) * row[e] * inv * gamma[sz(e)];
          v[sz(t * kvw + o)] = sum;
        }
      }
    }
    const int64_t group = c.n_heads / c.n_kv_heads;
    const int64_t window = c.window_of_layer(0);
    double worst = 0;
    for (const AttentionPattern& call : pattern->calls) {
      ASSERT_EQ(call.weights.size(), sz(c.n_heads * call.n_tokens * call.n_keys));
      for (int64_t h = 0; h < c.n_heads; ++h) {
        for (int64_t t = 0; t < call.n_tokens; ++t) {
          const int64_t pos = call.first_position + t;
          const float* row = call.weights.data() + (h * call.n_tokens + t) * call.n_keys;
          double total = 0;
          for (int64_t j = 0; j < call.n_keys; ++j) {
            const bool visible = j <= pos && (window <= 0 || j > pos - window);
            if (visible) {
              EXPECT_GT(row[j], 0.0f);
            } else {
              EXPECT_EQ(row[j], 0.0f) << path << " head " << h << " query " << pos << " key " << j;
            }
            total += row[j];
          }
          EXPECT_NEAR(total, 1.0, 1e-5);
          if (!c.pre_norms) continue;
          for (int64_t e = 0; e < hd; ++e) {
            double sum = 0;
            for (int64_t j = 0; j <= pos; ++j) sum += double(row[j]) * v[sz(j * kvw + (h / group) * hd + e)];
            worst = std::max(worst, std::fabs(sum - z->values[sz(pos * qw + h * hd + e)]));
          }
        }
      }
    }
    if (c.pre_norms) {
      EXPECT_LT(worst, 1e-5) << path;
    }

    // Removed like a hook: the next call records nothing.
    session.remove_hook(pattern_id);
    session.reset();
    session.forward(kTokens);
    EXPECT_EQ(pattern->calls.size(), 2u);
  }
}

TEST(HeadHooks, InterventionsParseAndApplyAllOrNone) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const ModelConfig& c = model.config();
  const std::string last_head = std::to_string(c.n_heads - 1);
  const HeadIntervention scale = parse_head_scale("1:" + last_head + "=0.5", c);
  EXPECT_EQ(scale.layer, 1);
  EXPECT_EQ(scale.head, c.n_heads - 1);
  EXPECT_FLOAT_EQ(scale.factor, 0.5f);
  EXPECT_EQ(parse_head_ablation("0:1", c).factor, 0.0f);

  auto message_of = [](auto parse) {
    try {
      parse();
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput);
      return std::string(e.what());
    }
    ADD_FAILURE() << "no error";
    return std::string();
  };
  EXPECT_NE(message_of([&] { parse_head_ablation("0:" + std::to_string(c.n_heads), c); }).find("out of range"),
            std::string::npos);
  EXPECT_NE(message_of([&] { parse_head_ablation(std::to_string(c.n_layers) + ":0", c); }).find("layer"),
            std::string::npos);
  EXPECT_NE(message_of([&] { parse_head_ablation("3", c); }).find("LAYER:HEAD"), std::string::npos);
  EXPECT_NE(message_of([&] { parse_head_scale("0:1", c); }).find("LAYER:HEAD=FACTOR"), std::string::npos);
  EXPECT_NE(message_of([&] { parse_head_scale("0:1=nan", c); }).find("finite"), std::string::npos);
  EXPECT_NE(message_of([&] { parse_head_scale("0:1=2x", c); }).find("finite"), std::string::npos);

  Session session(model);
  EXPECT_THROW(session.scale_heads(0, {c.n_heads}, 1.0f), Error);
  EXPECT_THROW(session.scale_heads(0, {0}, INFINITY), Error);
  EXPECT_THROW(session.ablate_heads(c.n_layers, {0}), Error);
  EXPECT_THROW(session.ablate_heads(0, {}), Error);
  EXPECT_THROW(session.record_attention(c.n_layers), Error);

  // A bad entry leaves none of the call's hooks behind.
  const std::vector<float> baseline = session.forward(kTokens);
  Interventions bad;
  bad.heads = {{0, 0, 0.0f}, {0, c.n_heads, 0.0f}};
  EXPECT_THROW(apply_interventions(session, bad), Error);
  session.reset();
  EXPECT_EQ(session.forward(kTokens), baseline);

  // Neurons and heads together: the same as applying each by hand.
  Interventions both({{1, 7, 0.5f}}, {{0, 1, 2.0f}});
  const std::vector<HookId> ids = apply_interventions(session, both);
  EXPECT_EQ(ids.size(), 2u);
  session.reset();
  const std::vector<float> together = session.forward(kTokens);
  session.clear_hooks();
  session.clamp_neurons(1, {7}, 0.5f);
  session.scale_heads(0, {1}, 2.0f);
  session.reset();
  EXPECT_EQ(session.forward(kTokens), together);
  EXPECT_GT(max_abs_diff(together, baseline), 1e-4);
}

}  // namespace
}  // namespace neuronlens

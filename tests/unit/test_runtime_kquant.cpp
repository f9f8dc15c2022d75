// The runtime on a real K-quant model, Qwen2.5-Coder-1.5B-Instruct Q4_K_M
// (scripts/fetch-multipart-model.sh): weights read in place, the clamp
// identity with 8-bit activations, and logits against llama.cpp on the same
// file (scripts/make_llamacpp_reference.py, committed under
// tests/fixtures/forward/).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "neuronlens/interventions.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "neuronlens/tensor.h"
#include "json_fixture.h"
#include "row_probabilities.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Token ids of Qwen's vocabulary; any prompt will do for these identities.
const std::vector<int32_t> kTokens = {750, 75698, 1445, 982, 262, 421, 308, 2651};

TEST(RuntimeKQuant, QwenWeightsAreReadInPlace) {
  NEURONLENS_REQUIRE_QWEN_MODEL(path);
  const Model model = Model::load(path);
  const Session session(model);
  // Every matrix is Q4_K or Q6_K and read from the mapping: what the session
  // owns is the float32 norms and biases, under 1 MiB.
  EXPECT_LT(session.copied_weight_bytes(), 1 << 20);
  EXPECT_GT(session.weight_bytes(), model.file_bytes() * 9 / 10);
  for (const WeightKernelUse& use : plan_weight_kernels(model)) {
    EXPECT_EQ(use.kernel, "kquant") << use.file_type;
    EXPECT_TRUE(use.in_place) << use.file_type;
  }
}

// With K-quant weights the MLP output is W_down · q(act), q the rounding of
// the activations to 8 bits, 256 at a time. So clamping neuron i to c equals
// "zero column i of W_down, add c * W_down[:, i]" up to that rounding, whose
// bound for output e is sum over blocks b of (d_b / 2) * sum_{j in b} |W[e, j]|
// (d_b = max |act| of block b / 127, of the clamped activations). Checked at
// a layer whose ffn_down is Q4_K and at one whose ffn_down is Q6_K.
TEST(RuntimeKQuant, ClampEqualsZeroedDownColumnPlusConstantWriteWithinTheActivationRounding) {
  NEURONLENS_REQUIRE_QWEN_MODEL(path);
  const Model model = Model::load(path);
  const ModelConfig& c = model.config();
  const int64_t d = c.d_model, f = c.d_ffn, n = static_cast<int64_t>(kTokens.size());
  Session session(model);
  const std::vector<float> baseline = session.forward(kTokens, LogitsFor::LastToken);
  // The first layer whose ffn_down is Q6_K and the first whose is Q4_K.
  std::vector<int64_t> layers;
  for (const DType type : {DType::Q6_K, DType::Q4_K}) {
    for (int64_t layer = 0; layer < c.n_layers; ++layer) {
      if (model.weight(WeightKind::FfnDown, layer).type == type) {
        layers.push_back(layer);
        break;
      }
    }
  }
  ASSERT_EQ(layers.size(), 2u) << "both K-quant types of ffn_down should be covered";
  for (const int64_t layer : layers) {
    const TensorView& down_view = model.weight(WeightKind::FfnDown, layer);
    const int64_t neuron = 1234;
    const float value = 8.0f;

    std::vector<float> act_before, act_clamped, out_clamped;
    const auto copy_into = [](std::vector<float>& v) {
      return [&v](int64_t, HookPoint, float* data, int64_t rows, int64_t width, int64_t) {
        v.assign(data, data + rows * width);
      };
    };
    session.reset();
    HookId id = session.add_hook(HookPoint::MlpAct, layer, copy_into(act_before));
    session.forward(kTokens, LogitsFor::LastToken);
    session.remove_hook(id);

    session.reset();
    session.clamp_neurons(layer, {neuron}, value);
    session.add_hook(HookPoint::MlpAct, layer, copy_into(act_clamped));  // runs after the clamp
    session.add_hook(HookPoint::MlpOut, layer, copy_into(out_clamped));
    const std::vector<float> clamped = session.forward(kTokens, LogitsFor::LastToken);
    session.clear_hooks();

    ASSERT_EQ(act_clamped.size(), sz(n * f));
    ASSERT_EQ(out_clamped.size(), sz(n * d));
    for (int64_t t = 0; t < n; ++t) {
      for (int64_t j = 0; j < f; ++j) {
        const float expected = j == neuron ? value : act_before[sz(t * f + j)];
        ASSERT_EQ(act_clamped[sz(t * f + j)], expected) << "token " << t << " neuron " << j;
      }
    }

    std::vector<float> down(sz(d * f));  // [d, F], gguf-py's values (bit-identical dequantisation)
    dequantize_rows(down_view, 0, d, down.data());
    double worst_ratio = 0;
    for (int64_t t = 0; t < n; ++t) {
      const float* a = act_clamped.data() + t * f;
      std::vector<double> half_step(sz(f / 256));  // d_b / 2 per block of 256 activations
      for (int64_t b = 0; b < f / 256; ++b) {
        float amax = 0;
        for (int64_t j = 256 * b; j < 256 * (b + 1); ++j) amax = std::max(amax, std::fabs(a[j]));
        half_step[sz(b)] = amax / 127.0 / 2;
      }
      for (int64_t e = 0; e < d; ++e) {
        const float* row = down.data() + e * f;
        double rewritten = double(value) * row[neuron], bound = 0, magnitude = 0;
        for (int64_t j = 0; j < f; ++j) {
          if (j != neuron) rewritten += double(row[j]) * act_before[sz(t * f + j)];
          bound += std::fabs(row[j]) * half_step[sz(j / 256)];
          magnitude += std::fabs(double(row[j]) * a[j]);
        }
        bound += 1e-5 * magnitude;  // float32 sums
        const double diff = std::fabs(out_clamped[sz(t * d + e)] - rewritten);
        ASSERT_LE(diff, bound) << "layer " << layer << " token " << t << " output " << e;
        worst_ratio = std::max(worst_ratio, diff / bound);
      }
    }
    double logit_change = 0;
    for (size_t i = 0; i < clamped.size(); ++i) logit_change = std::max(logit_change, double(std::fabs(clamped[i] - baseline[i])));
    EXPECT_GT(logit_change, 0.1) << "the clamp should change the logits";
    std::printf("layer %lld (ffn_down %s): clamp vs zeroed column + c*W_down[:, i]: worst |diff| / bound = %.3f\n",
                static_cast<long long>(layer), std::string(dtype_name(down_view.type)).c_str(), worst_ratio);
  }
}


using testing::committed_fixture;
using testing::read_json;

using testing::row_probabilities;

// Against llama.cpp on the same file (float32 KV cache on both sides).
// llama.cpp is a reference with noise of its own, and so is any arithmetic
// that rounds the activations to 8 bits: one float rounding can flip an
// activation's 8-bit rounding, and the flip travels through the layers.
// scripts/check_int8_noise.py measures it on these prompts: two runs of our
// own 8-bit arithmetic that differ only in the float rounding of their sums
// (the AVX2 and the portable kernels) are up to 0.045-0.058 apart in a top-5
// probability, and llama.cpp is 0.041-0.053 from the float32 forward pass of
// the same weights (--weights exact, which matches transformers and a float64
// reference). The 0.03 is therefore out of reach of anything but a
// bit-for-bit copy of llama.cpp's float order; --weights exact meets it
// against the float references instead (test_runtime.cpp,
// test_gemma3_real.cpp). Here, with a tolerance of 0.06 (worst measured
// 0.044 on Qwen, 0.038 on SmolLM2):
//   - at every position, the probabilities of llama.cpp's top 5 within 0.06;
//   - the same top-1 wherever llama.cpp's own top two are at least 2 * 0.06
//     apart (below that, two probabilities each within the tolerance can
//     trade places, as at the near ties of the greedy rule below: one ulp
//     more or less in an activation moved Qwen's top-1 at a three-way tie
//     of 0.246, 0.233 and 0.222);
//   - the greedy continuation through the KV cache the same as llama.cpp's,
//     unless at a step where llama.cpp's token keeps its probability within
//     0.06 and llama.cpp's top two are within 2 * 0.06 (two probabilities
//     each within the tolerance can trade places only then): if the texts
//     part there, the rest compares different texts and is not checked.
constexpr double kProbabilityTolerance = 0.06;
// Under AddressSanitizer (an unoptimised build, tens of times slower) the
// greedy check stops after a few steps; the Release run checks them all.
#if defined(__SANITIZE_ADDRESS__)
constexpr size_t kGreedySteps = 4;
#else
constexpr size_t kGreedySteps = 32;
#endif

// How a reference is compared.
struct ReferenceCheck {
  double tolerance = kProbabilityTolerance;
  WeightFormat weights = WeightFormat::Quantized;
  // A greedy continuation may part from the reference's at a near tie (see
  // above); false: it must equal the reference's at every step.
  bool greedy_may_part_at_near_ties = true;
  // The top-1 must agree wherever the reference's top two are this far
  // apart; 0 means 2 * tolerance, the least gap its noise cannot close.
  double top1_gap = 0;
};

// Against a reference in the shape of make_llamacpp_reference.py's (also
// make_transformers_reference.py's, which adds "clamp": "L:I=V" when it
// clamped a neuron; the session clamps it too).
void expect_matches_reference(const std::string& model_path, const std::string& reference,
                              const ReferenceCheck& check = {}) {
  const double tolerance = check.tolerance;
  const Model model = Model::load(model_path);
  const int64_t v = model.config().vocab_size;
  const nlohmann::json ref = read_json(committed_fixture("forward/" + reference));
  Session session(model, SessionOptions{check.weights});
  if (const std::string clamp = ref.value("clamp", ""); !clamp.empty()) {
    const NeuronIntervention n = parse_clamp(clamp, model.config());
    session.clamp_neurons(n.layer, {n.neuron}, *n.clamp_value);
  }
  double worst = 0;
  int top1_checked = 0, positions = 0, greedy_checked = 0, greedy_total = 0;
  for (const auto& prompt : ref.at("prompts")) {
    const auto tokens = prompt.at("tokens").get<std::vector<int32_t>>();
    const auto top_ids = prompt.at("top_ids").get<std::vector<std::vector<int64_t>>>();
    const auto top_probs = prompt.at("top_probs").get<std::vector<std::vector<double>>>();
    session.reset();
    const std::vector<float> logits = session.forward(tokens);
    for (size_t t = 0; t < tokens.size(); ++t, ++positions) {
      const std::vector<double> p = row_probabilities(logits.data() + t * sz(v), v);
      for (size_t k = 0; k < top_ids[t].size(); ++k) {
        const double diff = std::fabs(p[sz(top_ids[t][k])] - top_probs[t][k]);
        worst = std::max(worst, diff);
        EXPECT_LE(diff, tolerance) << prompt.at("text") << " position " << t << " token " << top_ids[t][k];
      }
      if (top_probs[t][0] - top_probs[t][1] >= (check.top1_gap > 0 ? check.top1_gap : 2 * tolerance)) {
        EXPECT_EQ(std::max_element(p.begin(), p.end()) - p.begin(), top_ids[t][0])
            << prompt.at("text") << " position " << t;
        ++top1_checked;
      }
    }
    const auto greedy = prompt.at("greedy").get<std::vector<int64_t>>();
    const auto greedy_top2 = prompt.at("greedy_top2_probs").get<std::vector<std::vector<double>>>();
    greedy_total += static_cast<int>(std::min(greedy.size(), kGreedySteps));
    std::vector<float> last(logits.end() - v, logits.end());
    for (size_t step = 0; step < std::min(greedy.size(), kGreedySteps); ++step) {
      const auto next = static_cast<int32_t>(std::max_element(last.begin(), last.end()) - last.begin());
      if (next != greedy[step]) {
        ASSERT_TRUE(check.greedy_may_part_at_near_ties)
            << prompt.at("text") << " greedy step " << step << ": " << next << " instead of " << greedy[step];
        const double margin = greedy_top2[step][0] - greedy_top2[step][1];
        const std::vector<double> p = row_probabilities(last.data(), v);
        EXPECT_LE(std::fabs(p[sz(greedy[step])] - greedy_top2[step][0]), tolerance)
            << prompt.at("text") << " greedy step " << step;
        EXPECT_LT(margin, 2 * tolerance)
            << prompt.at("text") << " greedy step " << step << ": " << next << " instead of " << greedy[step];
        std::printf("  %s: greedy parts from llama.cpp's at step %zu, a near tie there (top two %.3f, %.3f)\n",
                    prompt.at("text").get<std::string>().substr(0, 24).c_str(), step, greedy_top2[step][0],
                    greedy_top2[step][1]);
        break;
      }
      ++greedy_checked;
      last = session.forward({next});
    }
  }
  EXPECT_GT(top1_checked, positions * 3 / 4);
  std::printf("%s: worst |p - p_ref| over the top-5 = %.2g; top-1 checked at %d of %d positions; "
              "%d of %d greedy tokens identical\n",
              reference.c_str(), worst, top1_checked, positions, greedy_checked, greedy_total);
}

TEST(RuntimeVsLlamaCpp, QwenCoderQ4KM) {
  NEURONLENS_REQUIRE_QWEN_MODEL(path);
  expect_matches_reference(path, "qwen2.5_coder_1.5b_q4_k_m.llamacpp.json");
}

// Gemma 3 270M (Q5_0, Q8_0, Q4_K, Q6_K): the family's whole block — (1 + γ)
// norms folded by the converter, sqrt(d) embedding scale, q/k norms, GeGLU,
// post-norms, five local layers to one global with their own RoPE bases —
// against llama.cpp's gemma3 graph.
TEST(RuntimeVsLlamaCpp, Gemma3_270M) {
  NEURONLENS_REQUIRE_GEMMA3_MODEL(path);
  // Gemma's large activations make the 8-bit noise larger (see above): our
  // two kernel paths are 0.045 apart, llama.cpp is 0.053 from the exact
  // forward pass (itself within 3.4e-6 of the float64 reference,
  // test_gemma3_real.cpp), and we are 0.083 from llama.cpp at worst. Too few
  // of its positions have top two 2 * 0.1 apart for that rule to say much,
  // so the top-1 is held to the stricter 0.01 rule, which it meets here.
  expect_matches_reference(path, "gemma3_270m_q4_k_m.llamacpp.json", {.tolerance = 0.1, .top1_gap = 0.01});
}

TEST(RuntimeVsLlamaCpp, DefaultModelQ4_1) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  expect_matches_reference(path, "smollm2_135m_q4_1.llamacpp.json");
}

// --weights exact (the blocks in place, float32 activations) against
// transformers' float32 forward pass of the same GGUF
// (scripts/make_transformers_reference.py), with and without a clamped
// neuron: the bar, top-5 probabilities within 0.03 at every
// position, the same top-1 wherever transformers' top two are 0.01 apart,
// and the same 32 greedy tokens, no near-tie allowance. (The default's
// 8-bit activations cannot meet 0.03 against anything but themselves; see
// above.) The unclamped default model is Runtime.DefaultModelMatchesTransformers.
constexpr ReferenceCheck kExactCheck{.tolerance = 0.03, .weights = WeightFormat::Exact,
                                     .greedy_may_part_at_near_ties = false, .top1_gap = 0.01};

TEST(RuntimeVsTransformers, DefaultModelClampedExact) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  expect_matches_reference(path, "smollm2_135m_q4_1.transformers-clamp.json", kExactCheck);
}

TEST(RuntimeVsTransformers, QwenCoderQ4KMExact) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "every exact pass dequantises 1.5B weights: left to the Release build";
#endif
  NEURONLENS_REQUIRE_QWEN_MODEL(path);
  expect_matches_reference(path, "qwen2.5_coder_1.5b_q4_k_m.transformers.json", kExactCheck);
}

TEST(RuntimeVsTransformers, QwenCoderQ4KMClampedExact) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "every exact pass dequantises 1.5B weights: left to the Release build";
#endif
  NEURONLENS_REQUIRE_QWEN_MODEL(path);
  expect_matches_reference(path, "qwen2.5_coder_1.5b_q4_k_m.transformers-clamp.json", kExactCheck);
}

}  // namespace
}  // namespace neuronlens

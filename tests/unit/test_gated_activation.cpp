// The MLP's gated activations (backends/cpu/gated_activation.h) on every
// KernelPath this CPU runs, against float64 SiLU and tanh-GELU: within a few
// float32 ulps (and tanh-GELU's conditioning) over values from
// the tiny to beyond where the exponential saturates, with a tail that is
// not a multiple of the vector width.
#include "backends/cpu/gated_activation.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <string>
#include <vector>

namespace neuronlens {
namespace {

using cpu::KernelPath;

class GatedActivation : public ::testing::TestWithParam<KernelPath> {
 protected:
  void SetUp() override {
    if (!cpu::can_run(GetParam())) {
      GTEST_SKIP() << "this CPU cannot run the " << cpu::kernel_path_name(GetParam()) << " path";
    }
  }
};

// Gates: a spread of magnitudes and signs, zeros, and values far enough out
// that e^(±2u) over- or underflows float; 1,003 of them (not a multiple of 8).
std::vector<float> gates() {
  std::vector<float> g = {0.0f, -0.0f, 1e-30f, -1e-30f, 1e-6f, -1e-6f, 0.5f, -0.5f, 1.0f, -1.0f, 3.0f, -3.0f,
                          10.0f, -10.0f, 30.0f, -30.0f, 88.0f, -88.0f, 200.0f, -200.0f, 1e4f, -1e4f};
  std::mt19937 rng(11);
  std::normal_distribution<float> normal(0.0f, 4.0f);
  while (g.size() < 1003) g.push_back(normal(rng));
  return g;
}

double silu64(double g) { return g / (1.0 + std::exp(-g)); }
// PyTorch's ½ g (1 + tanh u) as g σ(2u): the same function, but 1 + tanh u
// cancels to 0 even in float64 once u < -19, where g σ(2u) is still ~1e-16.
// (The test below checks the two forms agree where both are well defined.)
double gelu64(double g) {
  const double u = std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g);
  return g / (1.0 + std::exp(-2.0 * u));
}

TEST(GatedActivationReference, SigmoidFormIsPyTorchsTanhGelu) {
  for (double g = -4; g <= 4; g += 0.125) {
    const double u = std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g);
    EXPECT_NEAR(gelu64(g), 0.5 * g * (1.0 + std::tanh(u)), 1e-15) << g;
  }
}

// The exponential's argument for a gate: -g (exact in float) for SiLU,
// -2u for tanh-GELU, whose float evaluation (the cube, the constants) is off
// by a few ulps of its own size, and e^x turns an absolute error e in x into
// a relative error e in the result.
double silu_argument(double g) { return g; }
double gelu_argument(double g) { return 2 * std::sqrt(2.0 / M_PI) * (g + 0.044715 * g * g * g); }

void expect_close(const std::vector<float>& got, const std::vector<float>& g, const std::vector<float>& up,
                  double (*reference)(double), double (*argument)(double), double argument_ulps,
                  const std::string& what) {
  for (size_t i = 0; i < g.size(); ++i) {
    const double want = reference(g[i]) * up[i];
    const double ulps = 8 + argument_ulps * std::fabs(argument(g[i]));
    const double tolerance = ulps * std::ldexp(std::fabs(want), -24) + 1e-36;  // + what float cannot hold near zero
    EXPECT_NEAR(got[i], want, tolerance) << what << ", gate " << g[i] << " up " << up[i];
  }
}

TEST_P(GatedActivation, SiluAndTanhGeluMatchFloat64) {
  const std::vector<float> g = gates();
  std::vector<float> up(g.size());
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> uniform(-2.0f, 2.0f);
  for (float& u : up) u = uniform(rng);

  std::vector<float> silu = g;
  cpu::gated_product(cpu::Gate::Silu, silu.data(), up.data(), static_cast<int64_t>(g.size()), GetParam());
  expect_close(silu, g, up, silu64, silu_argument, 0, "silu");

  std::vector<float> gelu = g;
  cpu::gated_product(cpu::Gate::GeluTanh, gelu.data(), up.data(), static_cast<int64_t>(g.size()), GetParam());
  expect_close(gelu, g, up, gelu64, gelu_argument, 8, "gelu_tanh");
}

// Where a value sits (in a full vector or in the tail) does not change it: a
// prompt's activations are cut into chunks over the threads.
TEST_P(GatedActivation, AValueGetsTheSameBitsInAnyChunk) {
  const std::vector<float> g = gates();
  const std::vector<float> up(g.size(), 1.5f);
  std::vector<float> whole = g;
  cpu::gated_product(cpu::Gate::GeluTanh, whole.data(), up.data(), static_cast<int64_t>(g.size()), GetParam());
  for (const size_t chunk : {1u, 3u, 7u, 8u, 13u}) {
    std::vector<float> pieces = g;
    for (size_t first = 0; first < g.size(); first += chunk) {
      const size_t n = std::min(chunk, g.size() - first);
      cpu::gated_product(cpu::Gate::GeluTanh, pieces.data() + first, up.data() + first, static_cast<int64_t>(n),
                           GetParam());
    }
    for (size_t i = 0; i < g.size(); ++i) ASSERT_EQ(pieces[i], whole[i]) << "chunk " << chunk << ", value " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Paths, GatedActivation,
                         ::testing::Values(KernelPath::Avx512Vnni, KernelPath::Avx2, KernelPath::Portable),
                         [](const ::testing::TestParamInfo<KernelPath>& p) {
                           return std::string(cpu::kernel_path_name(p.param));
                         });

}  // namespace
}  // namespace neuronlens

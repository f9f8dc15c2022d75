// 8-bit-activation products with Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 weights
// (backends/cpu/block_q8.h), on every KernelPath this CPU runs, against
// float64 sums over gguf-py's dequantisation of the same random blocks
// (scripts/fixtures/gen_quant_blocks.py), and the activation quantiser
// against llama.cpp's rule (quantize_row_q8_1: d = max|x| / 127 stored as
// fp16, q = round-half-even(x * 127 / max|x|), s = d * sum q stored as fp16).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/block_q8.h"
#include "io/half.h"
#include "neuronlens/dtype.h"
#include "neuronlens/error.h"
#include "quant_fixture.h"
#include "runtime/weight_matrix.h"

namespace neuronlens {
namespace {

using cpu::KernelPath;
constexpr int64_t kRows = testing::kQuantFixtureRows, kCols = 512, kBlocks = kCols / 32;

size_t sz(int64_t n) { return static_cast<size_t>(n); }

std::vector<float> random_activations(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(sz(n));
  for (float& v : x) v = dist(rng);
  // An outlier, as MLP activations have: it sets its block's scale.
  if (n > 300) x[300] = 40.0f;
  return x;
}

float half_rounded(float v) { return fp16_to_fp32(fp32_to_fp16(v)); }

float half_at(const uint8_t* p) { return fp16_to_fp32(static_cast<uint16_t>(p[0] | p[1] << 8)); }

class BlockQ8 : public ::testing::TestWithParam<std::tuple<DType, KernelPath>> {
 protected:
  void SetUp() override {
    if (!cpu::can_run(path())) GTEST_SKIP() << "this CPU cannot run the " << cpu::kernel_path_name(path()) << " path";
    RecordProperty("kernel_path", std::string(cpu::kernel_path_name(path())));
    fixture_ = testing::load_quant_fixture(type());
    ASSERT_EQ(fixture_.expected.size(), sz(kRows * kCols));
  }
  DType type() const { return std::get<0>(GetParam()); }
  KernelPath path() const { return std::get<1>(GetParam()); }
  cpu::BlockFormat format() const { return *cpu::block_format_of(type()); }
  int64_t row_bytes() const { return static_cast<int64_t>(fixture_.data.size()) / kRows; }
  double weight(int64_t r, int64_t c) const { return fixture_.expected[sz(r * kCols + c)]; }
  // The offset m of the block holding (r, c): 0 but for Q4_1 and Q5_1.
  double offset(int64_t r, int64_t c) const {
    if (type() != DType::Q4_1 && type() != DType::Q5_1) return 0;
    return half_at(fixture_.data.data() + r * row_bytes() + (c / 32) * (row_bytes() / kBlocks) + 2);
  }

  testing::QuantFixture fixture_;
};

TEST_P(BlockQ8, ActivationsQuantisedByLlamaCppsRule) {
  std::vector<float> x = random_activations(kCols, 3);
  for (int i = 64; i < 96; ++i) x[sz(i)] = 0;  // block 2: all zero
  std::vector<cpu::Q8Block> q(kBlocks);
  cpu::quantize_q8_blocks(x.data(), kCols, q.data(), path());
  for (int64_t b = 0; b < kBlocks; ++b) {
    const float* xb = x.data() + b * 32;
    float max = 0;
    for (int i = 0; i < 32; ++i) max = std::max(max, std::fabs(xb[i]));
    const float inverse = max != 0 ? 127.0f / max : 0.0f;
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      EXPECT_EQ(q[b].q[i], static_cast<int>(std::nearbyint(xb[i] * inverse))) << "block " << b << " value " << i;
      // The step is max / 127; d is that step rounded to fp16 (relative 2^-11).
      EXPECT_LE(std::fabs(double(q[b].d) * q[b].q[i] - xb[i]), max / 127.0 * (0.5 + 127.0 / 2048) + 1e-30);
      sum += q[b].q[i];
    }
    EXPECT_EQ(q[b].d, half_rounded(max / 127.0f)) << "block " << b;
    EXPECT_EQ(q[b].s, half_rounded(max / 127.0f * static_cast<float>(sum))) << "block " << b;
  }
  EXPECT_EQ(q[2].d, 0.0f);  // no division by zero
  EXPECT_EQ(q[2].s, 0.0f);

  // An overflowed activation makes its block NaN, so no product looks finite.
  for (const float bad : {std::numeric_limits<float>::infinity(), std::numeric_limits<float>::quiet_NaN()}) {
    std::vector<float> y = x;
    y[40] = bad;
    cpu::quantize_q8_blocks(y.data(), kCols, q.data(), path());
    EXPECT_TRUE(std::isnan(q[1].d)) << bad;
    EXPECT_FALSE(std::isnan(q[0].d));
  }
}

// Products for 1..9 tokens (every remainder of the kernels' groups of 4) and
// odd row ranges, checked against two float64 references:
//   - with the quantised activations: sum (w - m) * d_x q_x + m * s_x per
//     block, which the kernel computes up to float32 rounding;
//   - with the float activations: off by exactly the activations' rounding,
//     sum (w - m) (d_x q_x - x) + m (s_x - sum x), bounded term by term.
TEST_P(BlockQ8, ProductsMatchFloat64DotsOfTheReferenceDequantisation) {
  for (const int64_t tokens : {1, 2, 3, 4, 5, 9}) {
    const std::vector<float> x = random_activations(tokens * kCols, static_cast<uint32_t>(tokens));
    std::vector<cpu::Q8Block> xq(sz(tokens * kBlocks));
    for (int64_t t = 0; t < tokens; ++t) {
      cpu::quantize_q8_blocks(x.data() + t * kCols, kCols, xq.data() + t * kBlocks, path());
    }
    std::vector<float> y(sz(tokens * kRows), NAN);
    for (const auto& [first, last] : {std::pair<int64_t, int64_t>{0, 3}, {3, 4}, {4, kRows}}) {
      cpu::block_q8_matmul(format(), fixture_.data.data(), row_bytes(), kBlocks, first, last, xq.data(), tokens,
                           y.data(), kRows, path());
    }
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t r = 0; r < kRows; ++r) {
        double with_quantised = 0, with_float = 0, magnitude = 0, rounding_bound = 0;
        for (int64_t b = 0; b < kBlocks; ++b) {
          const cpu::Q8Block& xb = xq[sz(t * kBlocks + b)];
          const double m = offset(r, b * 32);
          double x_sum = 0;
          for (int64_t i = 0; i < 32; ++i) {
            const int64_t c = b * 32 + i;
            const double w = weight(r, c) - m, xf = x[sz(t * kCols + c)], xhat = double(xb.d) * xb.q[i];
            with_quantised += w * xhat;
            with_float += weight(r, c) * xf;
            magnitude += std::fabs(w * xhat) + std::fabs(m * xhat);
            rounding_bound += std::fabs(w) * std::fabs(xhat - xf);
            x_sum += xf;
          }
          with_quantised += m * xb.s;
          magnitude += std::fabs(m * xb.s);
          rounding_bound += std::fabs(m) * std::fabs(xb.s - x_sum);
        }
        const double got = y[sz(t * kRows + r)];
        const std::string where = "token " + std::to_string(t) + " of " + std::to_string(tokens) + ", row " +
                                  std::to_string(r);
        EXPECT_NEAR(got, with_quantised, 1e-5 * magnitude + 1e-30) << where;
        EXPECT_NEAR(got, with_float, rounding_bound + 1e-5 * magnitude + 1e-30) << where;
      }
    }
  }
}

// The SIMD path quantises to the same bytes as the portable one and gives
// its products up to float rounding (it fuses multiply-adds).
TEST_P(BlockQ8, PathsAgreeWithThePortableOne) {
  const std::vector<float> x = random_activations(3 * kCols, 11);
  std::vector<cpu::Q8Block> here(sz(3 * kBlocks)), portable(sz(3 * kBlocks));
  cpu::quantize_q8_blocks(x.data(), 3 * kCols, here.data(), path());
  cpu::quantize_q8_blocks(x.data(), 3 * kCols, portable.data(), KernelPath::Portable);
  for (size_t b = 0; b < here.size(); ++b) {
    EXPECT_EQ(here[b].d, portable[b].d) << "block " << b;
    EXPECT_EQ(here[b].s, portable[b].s) << "block " << b;
    EXPECT_TRUE(std::equal(here[b].q, here[b].q + 32, portable[b].q)) << "block " << b;
  }
  std::vector<float> y(sz(3 * kRows)), y_portable(sz(3 * kRows));
  cpu::block_q8_matmul(format(), fixture_.data.data(), row_bytes(), kBlocks, 0, kRows, here.data(), 3, y.data(),
                       kRows, path());
  cpu::block_q8_matmul(format(), fixture_.data.data(), row_bytes(), kBlocks, 0, kRows, here.data(), 3,
                       y_portable.data(), kRows, KernelPath::Portable);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_NEAR(y[i], y_portable[i], 1e-5 * (std::fabs(y_portable[i]) + 1));
}

INSTANTIATE_TEST_SUITE_P(FormatsAndPaths, BlockQ8,
                         ::testing::Combine(::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                                              DType::Q8_0),
                                            ::testing::Values(KernelPath::Avx512Vnni, KernelPath::Avx2,
                                                              KernelPath::Portable)),
                         [](const ::testing::TestParamInfo<std::tuple<DType, KernelPath>>& param) {
                           return std::string(dtype_name(std::get<0>(param.param))) + "_" +
                                  std::string(cpu::kernel_path_name(std::get<1>(param.param)));
                         });

TEST(BlockQ8Formats, F16AndBF16HaveNoEightBitKernel) {
  EXPECT_FALSE(cpu::has_q8_kernel(cpu::BlockFormat::F16));
  EXPECT_FALSE(cpu::has_q8_kernel(cpu::BlockFormat::BF16));
  std::vector<uint8_t> w(64);
  cpu::Q8Block x{};
  float y = 0;
  EXPECT_THROW(cpu::block_q8_matmul(cpu::BlockFormat::F16, w.data(), 64, 1, 0, 1, &x, 1, &y, 1), Error);
}

// A Session's matrix of these types multiplies through the 8-bit kernel by
// default and through the float-activation one with float_activations
// (WeightFormat::Exact), for one token and for a batch.
TEST(BlockQ8Formats, WeightMatrixChoosesTheEightBitKernelUnlessFloatActivations) {
  for (const DType type : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q8_0}) {
    const testing::QuantFixture fixture = testing::load_quant_fixture(type);
    const TensorView view = testing::view_of(fixture, type, {kRows, kCols});
    const runtime::WeightMatrix int8(view, true), exact(view, true, true);
    EXPECT_EQ(int8.kernel(), runtime::WeightKernel::Int8Blocks) << dtype_name(type);
    EXPECT_EQ(exact.kernel(), runtime::WeightKernel::Blocks) << dtype_name(type);
    EXPECT_EQ(int8.copied_bytes(), 0);
    for (const int64_t n : {1, 12}) {
      const std::vector<float> x = random_activations(n * kCols, static_cast<uint32_t>(n));
      std::vector<float> y(sz(n * kRows)), direct(sz(n * kRows));
      int8.multiply(x.data(), n, y.data());
      std::vector<cpu::Q8Block> xq(sz(n * kBlocks));
      for (int64_t t = 0; t < n; ++t) cpu::quantize_q8_blocks(x.data() + t * kCols, kCols, xq.data() + t * kBlocks);
      cpu::block_q8_matmul(*cpu::block_format_of(type), fixture.data.data(), view.row_bytes(), kBlocks, 0, kRows,
                           xq.data(), n, direct.data(), kRows);
      EXPECT_EQ(y, direct) << dtype_name(type) << ", n = " << n;  // the same kernel, rows split among threads
    }
  }
}

}  // namespace
}  // namespace neuronlens

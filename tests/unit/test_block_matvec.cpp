// Products straight from quantised blocks (backends/cpu/block_matvec.h and
// runtime::WeightMatrix) against the float64 dot product of gguf-py's
// dequantisation of the same blocks (scripts/fixtures/gen_quant_blocks.py:
// random blocks, scales normal, subnormal, zero and negative).
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/block_matvec.h"
#include "neuronlens/dtype.h"
#include "neuronlens/tensor.h"
#include "quant_fixture.h"
#include "runtime/weight_matrix.h"

namespace neuronlens {
namespace {

constexpr int64_t kRows = testing::kQuantFixtureRows, kCols = 512;  // 16 blocks a row

struct Blocks {
  testing::QuantFixture fixture;  // data [kRows, row bytes], expected [kRows, kCols]
  TensorView view;
};

Blocks load(DType type) {
  Blocks b{testing::load_quant_fixture(type), {}};
  b.view = testing::view_of(b.fixture, type, {kRows, kCols});
  return b;
}

std::vector<float> random_activations(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  return x;
}

// A float32 sum of k terms may be off by about k * 2^-24 * sum |terms|; the
// kernels sum 32-term blocks and then the blocks, so 512 terms give < 3e-5.
constexpr double kRelativeTolerance = 1e-5;

// Checks y [n, kRows] against the float64 products of x [n, kCols] with the
// reference dequantisation.
void expect_products(const Blocks& b, const std::vector<float>& x, int64_t n, const std::vector<float>& y,
                     const std::string& what) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < kRows; ++r) {
      double exact = 0, magnitude = 0;
      for (int64_t c = 0; c < kCols; ++c) {
        const double term =
            double(b.fixture.expected[static_cast<size_t>(r * kCols + c)]) * x[static_cast<size_t>(t * kCols + c)];
        exact += term;
        magnitude += std::fabs(term);
      }
      EXPECT_NEAR(y[static_cast<size_t>(t * kRows + r)], exact, kRelativeTolerance * magnitude + 1e-30)
          << what << " token " << t << " row " << r;
    }
  }
}

cpu::BlockFormat format_of(DType type) {
  return type == DType::Q4_0 ? cpu::BlockFormat::Q4_0 : type == DType::Q4_1 ? cpu::BlockFormat::Q4_1 : cpu::BlockFormat::Q8_0;
}

class BlockMatvec : public ::testing::TestWithParam<DType> {};

TEST_P(BlockMatvec, KernelMatchesFloat64DotOfReferenceDequantisation) {
  if (!cpu::have_block_matvec()) GTEST_SKIP() << "no AVX2/FMA/F16C";
  const DType type = GetParam();
  const Blocks b = load(type);
  ASSERT_EQ(b.fixture.expected.size(), static_cast<size_t>(kRows * kCols));
  const std::vector<float> x = random_activations(kCols, 7);
  std::vector<float> sums(kCols / 32), y(kRows);
  cpu::block_sums(x.data(), kCols, sums.data());
  const cpu::BlockFormat format = format_of(type);
  // In two calls, as threads split the rows.
  cpu::block_matvec(format, b.fixture.data.data(), b.view.row_bytes(), kCols, 0, 3, x.data(), sums.data(), y.data());
  cpu::block_matvec(format, b.fixture.data.data(), b.view.row_bytes(), kCols, 3, kRows, x.data(), sums.data(), y.data());
  expect_products(b, x, 1, y, "kernel");
}

TEST_P(BlockMatvec, DequantisationIsBitIdenticalToTheReference) {
  if (!cpu::have_block_matvec()) GTEST_SKIP() << "no AVX2/FMA/F16C";
  const Blocks b = load(GetParam());
  std::vector<float> out(kRows * kCols);
  cpu::block_dequantize(format_of(GetParam()), b.fixture.data.data(), kRows * kCols / 32, out.data());
  EXPECT_EQ(0, std::memcmp(out.data(), b.fixture.expected.data(), out.size() * sizeof(float)));
}

// WeightMatrix with blocks, for one token (kernel), a few (kernel per token)
// and many (dequantised tiles through GEMM), and the float32 one.
TEST_P(BlockMatvec, WeightMatrixProductsInEveryPathAndTheRowLookup) {
  const DType type = GetParam();
  const Blocks b = load(type);
  const runtime::WeightMatrix blocks(b.view, true), dense(b.view, false);
  EXPECT_EQ(blocks.is_blocks(), cpu::have_block_matvec());
  EXPECT_FALSE(dense.is_blocks());
  EXPECT_EQ(dense.bytes(), kRows * kCols * 4);
  if (blocks.is_blocks()) {
    EXPECT_EQ(blocks.bytes(), static_cast<int64_t>(b.fixture.data.size()));
  }
  for (const int64_t n : {1, 3, 12}) {
    const std::vector<float> x = random_activations(n * kCols, static_cast<uint32_t>(n));
    std::vector<float> y(static_cast<size_t>(n * kRows));
    blocks.multiply(x.data(), n, y.data());
    expect_products(b, x, n, y, "blocks, n = " + std::to_string(n));
    dense.multiply(x.data(), n, y.data());
    expect_products(b, x, n, y, "float32, n = " + std::to_string(n));
  }
  std::vector<float> row(kCols);
  blocks.copy_row(5, row.data());
  EXPECT_EQ(0, std::memcmp(row.data(), b.fixture.expected.data() + 5 * kCols, kCols * sizeof(float)));
}

INSTANTIATE_TEST_SUITE_P(Types, BlockMatvec, ::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q8_0),
                         [](const ::testing::TestParamInfo<DType>& param) { return std::string(dtype_name(param.param)); });

}  // namespace
}  // namespace neuronlens

// Products straight from GGUF blocks (backends/cpu/block_matvec.h, every
// format on every KernelPath this CPU runs, and runtime::WeightMatrix)
// against the float64 dot product of gguf-py's dequantisation of the same
// blocks (scripts/fixtures/gen_quant_blocks.py: random blocks, scales normal,
// subnormal, zero and negative; F16/BF16 random finite values, rows of 512).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/block_matvec.h"
#include "neuronlens/dtype.h"
#include "neuronlens/tensor.h"
#include "quant_fixture.h"
#include "runtime/weight_matrix.h"

namespace neuronlens {
namespace {

using cpu::KernelPath;

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
// reference dequantisation, over the first `cols` columns.
void expect_products(const Blocks& b, const std::vector<float>& x, int64_t n, const std::vector<float>& y,
                     const std::string& what, int64_t cols = kCols) {
  for (int64_t t = 0; t < n; ++t) {
    for (int64_t r = 0; r < kRows; ++r) {
      double exact = 0, magnitude = 0;
      for (int64_t c = 0; c < cols; ++c) {
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
  const std::optional<cpu::BlockFormat> format = cpu::block_format_of(type);
  if (!format) ADD_FAILURE() << "no block format for " << dtype_name(type);
  return format.value_or(cpu::BlockFormat::Q8_0);
}

TEST(BlockKernelPaths, RecordsWhichPathsThisCpuRuns) {
  std::string paths;
  for (const KernelPath path : {KernelPath::Avx512Vnni, KernelPath::Avx2, KernelPath::Portable}) {
    if (!cpu::can_run(path)) continue;
    if (!paths.empty()) paths += ',';
    paths += cpu::kernel_path_name(path);
  }
  RecordProperty("block_kernel_paths", paths);
  std::cout << "block kernels run here on: " << paths << " (default "
            << cpu::kernel_path_name(cpu::best_kernel_path()) << ")\n";
  EXPECT_TRUE(cpu::can_run(KernelPath::Portable));
  EXPECT_TRUE(cpu::can_run(cpu::best_kernel_path()));
  // Avx512Vnni runs AVX2 code where a kernel has no AVX-512 version.
  if (cpu::can_run(KernelPath::Avx512Vnni)) {
    EXPECT_TRUE(cpu::can_run(KernelPath::Avx2));
  }
  if (std::getenv("NEURONLENS_KERNEL_PATH") == nullptr) {
    const KernelPath fastest = cpu::can_run(KernelPath::Avx512Vnni) ? KernelPath::Avx512Vnni
                               : cpu::can_run(KernelPath::Avx2)     ? KernelPath::Avx2
                                                                    : KernelPath::Portable;
    EXPECT_EQ(cpu::best_kernel_path(), fastest);
  }
}

// Every format on every path this CPU has.
class BlockKernel : public ::testing::TestWithParam<std::tuple<DType, KernelPath>> {
 protected:
  void SetUp() override {
    if (!cpu::can_run(path())) {
      GTEST_SKIP() << "KernelPath::" << cpu::kernel_path_name(path()) << ": this CPU lacks "
                   << (path() == KernelPath::Avx512Vnni ? "AVX-512 F/BW/VL/VNNI, AVX2, FMA or F16C"
                                                        : "AVX2, FMA or F16C");
    }
    RecordProperty("kernel_path", std::string(cpu::kernel_path_name(path())));
    blocks_ = load(type());
    ASSERT_EQ(blocks_.fixture.expected.size(), static_cast<size_t>(kRows * kCols));
  }
  DType type() const { return std::get<0>(GetParam()); }
  KernelPath path() const { return std::get<1>(GetParam()); }
  cpu::BlockFormat format() const { return format_of(type()); }

  Blocks blocks_;
};

TEST_P(BlockKernel, ProductsMatchFloat64DotOfReferenceDequantisation) {
  std::vector<float> x = random_activations(kCols, 7);
  // The random BF16 fixture reaches 3e38, where products with x ~ N(0, 1)
  // would overflow float32 (not the float64 reference): x is scaled down by a
  // power of two, which is exact.
  if (type() == DType::BF16) {
    for (float& v : x) v = std::ldexp(v, -20);
  }
  std::vector<float> sums(kCols / 32);
  cpu::block_sums(x.data(), kCols, sums.data());
  const uint8_t* w = blocks_.fixture.data.data();
  const int64_t row_bytes = blocks_.view.row_bytes();

  // In two calls of odd length, as threads split the rows.
  std::vector<float> y(kRows, NAN);
  cpu::block_matvec(format(), w, row_bytes, kCols, 0, 3, x.data(), sums.data(), y.data(), path());
  cpu::block_matvec(format(), w, row_bytes, kCols, 3, kRows, x.data(), sums.data(), y.data(), path());
  expect_products(blocks_, x, 1, y, "rows [0, 3) + [3, 8)");

  // One row, and none: nothing outside [first, last) is written.
  std::vector<float> one(kRows, -1.0f);
  cpu::block_matvec(format(), w, row_bytes, kCols, 5, 6, x.data(), sums.data(), one.data(), path());
  cpu::block_matvec(format(), w, row_bytes, kCols, 2, 2, x.data(), sums.data(), one.data(), path());
  for (int64_t r = 0; r < kRows; ++r) {
    if (r == 5) {
      EXPECT_EQ(one[5], y[5]) << "row 5 alone";
    } else {
      EXPECT_EQ(one[static_cast<size_t>(r)], -1.0f) << "row " << r << " written";
    }
  }

  // The first 3 blocks of each row only (cols below the row's length).
  constexpr int64_t kShortCols = 96;
  std::vector<float> short_y(kRows);
  cpu::block_matvec(format(), w, row_bytes, kShortCols, 0, kRows, x.data(), sums.data(), short_y.data(), path());
  expect_products(blocks_, x, 1, short_y, "3 blocks of each row", kShortCols);
}

TEST_P(BlockKernel, DequantisationIsBitIdenticalToTheReference) {
  std::vector<float> out(kRows * kCols);
  cpu::block_dequantize(format(), blocks_.fixture.data.data(), kRows * kCols / 32, out.data(), path());
  for (size_t i = 0; i < out.size(); ++i) {
    // memcmp per value: -0.0 must stay -0.0.
    if (std::memcmp(&out[i], &blocks_.fixture.expected[i], sizeof(float)) != 0) {
      ADD_FAILURE() << "value " << i << " (block " << i / 32 << "): " << out[i] << ", reference "
                    << blocks_.fixture.expected[i];
      break;
    }
  }
  // One block from the middle; the value after it stays untouched.
  const int64_t block = 37, bytes = blocks_.view.row_bytes() / (kCols / 32);
  std::vector<float> one(33, -1.0f);
  cpu::block_dequantize(format(), blocks_.fixture.data.data() + block * bytes, 1, one.data(), path());
  EXPECT_EQ(0, std::memcmp(one.data(), blocks_.fixture.expected.data() + block * 32, 32 * sizeof(float)));
  EXPECT_EQ(one[32], -1.0f);
}

INSTANTIATE_TEST_SUITE_P(FormatsAndPaths, BlockKernel,
                         ::testing::Combine(::testing::Values(DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                                              DType::Q8_0, DType::F16, DType::BF16),
                                            ::testing::Values(KernelPath::Avx512Vnni, KernelPath::Avx2,
                                                              KernelPath::Portable)),
                         [](const ::testing::TestParamInfo<std::tuple<DType, KernelPath>>& param) {
                           return std::string(dtype_name(std::get<0>(param.param))) + "_" +
                                  std::string(cpu::kernel_path_name(std::get<1>(param.param)));
                         });

// Q4_0, Q4_1 and Q8_0 only: the runtime's use of the kernels.
class BlockMatvec : public ::testing::TestWithParam<DType> {};

// WeightMatrix with blocks and float activations (WeightFormat::Exact; the
// default's 8-bit activations are test_block_q8.cpp's), for one token
// (kernel), a few (kernel per token) and many (dequantised tiles through
// GEMM), and the float32 one.
TEST_P(BlockMatvec, WeightMatrixProductsInEveryPathAndTheRowLookup) {
  const DType type = GetParam();
  const Blocks b = load(type);
  const runtime::WeightMatrix blocks(b.view, true, /*float_activations=*/true), dense(b.view, false);
  EXPECT_TRUE(blocks.is_blocks());
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

// K-quant integer products (backends/cpu/kquant.h), on every KernelPath this
// CPU runs, against float64 sums over gguf-py's dequantisation of the same
// random blocks (scripts/fixtures/gen_quant_blocks.py).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/kquant.h"
#include "neuronlens/dtype.h"
#include "quant_fixture.h"

namespace neuronlens {
namespace {

using cpu::KernelPath;
constexpr int64_t kRows = testing::kQuantFixtureRows, kCols = 1024, kBlocks = kCols / 256;

cpu::KFormat kformat_of(DType type) { return cpu::kformat_of(type).value(); }

std::vector<float> random_activations(int64_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> x(static_cast<size_t>(n));
  for (float& v : x) v = dist(rng);
  // An outlier, as MLP activations have: it sets its block's scale.
  if (n > 300) x[300] = 40.0f;
  return x;
}

// The value the unpacked form gives for element i, in float64.
double unpacked_value(const cpu::KUnpacked& b, int i) {
  return double(b.d) * b.scale[i / 16] * b.q[i] - double(b.dmin) * b.min[i / 16];
}

double dequantised(const cpu::Q8KBlock& b, int i) { return double(b.d) * b.q[i]; }

class KQuant : public ::testing::TestWithParam<std::tuple<DType, KernelPath>> {
 protected:
  void SetUp() override {
    if (!cpu::can_run(path())) GTEST_SKIP() << "this CPU cannot run the " << cpu::kernel_path_name(path()) << " path";
    RecordProperty("kernel_path", std::string(cpu::kernel_path_name(path())));
    fixture_ = testing::load_quant_fixture(type());
    ASSERT_EQ(fixture_.expected.size(), static_cast<size_t>(kRows * kCols));
    unpacked_.resize(kRows * kBlocks);
    cpu::unpack_kblocks(kformat_of(type()), fixture_.data.data(), kRows * kBlocks, unpacked_.data(), path());
  }
  DType type() const { return std::get<0>(GetParam()); }
  KernelPath path() const { return std::get<1>(GetParam()); }
  double reference(int64_t r, int64_t c) const { return fixture_.expected[static_cast<size_t>(r * kCols + c)]; }

  testing::QuantFixture fixture_;
  std::vector<cpu::KUnpacked> unpacked_;  // [kRows, kBlocks]
};

// The common form gives gguf-py's values: the reference rounds d * scale and
// the subtraction to float32, so they agree to a few float32 ulps.
TEST_P(KQuant, UnpackedFormGivesTheReferenceValues) {
  for (int64_t r = 0; r < kRows; ++r) {
    for (int64_t c = 0; c < kCols; ++c) {
      const cpu::KUnpacked& b = unpacked_[static_cast<size_t>(r * kBlocks + c / 256)];
      const int i = static_cast<int>(c % 256);
      ASSERT_LE(b.q[i], 63);
      const double magnitude =
          std::fabs(double(b.d) * b.scale[i / 16] * b.q[i]) + std::fabs(double(b.dmin) * b.min[i / 16]);
      ASSERT_NEAR(unpacked_value(b, i), reference(r, c), 4 * 0x1p-24 * magnitude + 1e-45)
          << "row " << r << " value " << c;
    }
  }
}

TEST_P(KQuant, ActivationQuantisationRoundsToTheNearestStep) {
  const std::vector<float> x = random_activations(kCols, 3);
  std::vector<cpu::Q8KBlock> q(kBlocks), portable(kBlocks);
  cpu::quantize_q8k(x.data(), kCols, q.data(), path());
  cpu::quantize_q8k(x.data(), kCols, portable.data(), KernelPath::Portable);
  for (int64_t b = 0; b < kBlocks; ++b) {
    float amax = 0;
    for (int i = 0; i < 256; ++i) amax = std::max(amax, std::fabs(x[static_cast<size_t>(b * 256 + i)]));
    EXPECT_FLOAT_EQ(q[b].d, amax / 127);
    for (int i = 0; i < 256; ++i) {
      EXPECT_LE(std::fabs(dequantised(q[b], i) - x[static_cast<size_t>(b * 256 + i)]), q[b].d * 0.5001);
      EXPECT_EQ(q[b].q[i], portable[b].q[i]) << "block " << b << " value " << i;
    }
    for (int s = 0; s < 16; ++s) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += q[b].q[16 * s + k];
      EXPECT_EQ(q[b].sums[s], sum);
    }
  }
  // An all-zero block gets a zero scale, not a division by zero.
  const std::vector<float> zeros(256, 0.0f);
  cpu::quantize_q8k(zeros.data(), 256, q.data(), path());
  EXPECT_EQ(q[0].d, 0.0f);
  EXPECT_EQ(q[0].sums[3], 0);
}

// Products for 1..9 and 17 tokens (every remainder of the kernels' groups of
// 4 and 8, and blocks decoded once for several groups) and
// odd row ranges, through both entry points: kquant_product over unpacked
// blocks, and kquant_matmul over the file's blocks (Q4_K and Q6_K read
// directly on AVX2 and AVX-512, the others unpacked in tiles). Checked against two float64
// references: the dot product with the quantised activations (equal up to
// float32 rounding) and with the float activations (within the activation's
// rounding bound).
TEST_P(KQuant, ProductsMatchFloat64DotsOfTheReferenceDequantisation) {
  const int64_t row_bytes = kBlocks * cpu::kformat_block_bytes(kformat_of(type()));
  for (const bool from_file_blocks : {false, true}) {
    for (const int64_t tokens : {1, 2, 3, 4, 5, 9, 17}) {
      const std::vector<float> x = random_activations(tokens * kCols, static_cast<uint32_t>(tokens));
      std::vector<cpu::Q8KBlock> xq(static_cast<size_t>(tokens * kBlocks));
      for (int64_t t = 0; t < tokens; ++t) {
        cpu::quantize_q8k(x.data() + t * kCols, kCols, xq.data() + t * kBlocks, path());
      }
      std::vector<float> y(static_cast<size_t>(tokens * kRows), NAN);
      // Rows [0, 3), [3, 4) and [4, 8), as threads split them.
      for (const auto& [first, last] : {std::pair<int64_t, int64_t>{0, 3}, {3, 4}, {4, kRows}}) {
        if (from_file_blocks) {
          cpu::kquant_matmul(kformat_of(type()), fixture_.data.data(), row_bytes, kBlocks, first, last, xq.data(),
                             tokens, y.data(), kRows, path());
        } else {
          cpu::kquant_product(unpacked_.data() + first * kBlocks, last - first, kBlocks, xq.data(), tokens,
                              y.data() + first, kRows, path());
        }
      }
      for (int64_t t = 0; t < tokens; ++t) {
        for (int64_t r = 0; r < kRows; ++r) {
          double with_quantised = 0, with_float = 0, magnitude = 0, rounding_bound = 0;
          for (int64_t c = 0; c < kCols; ++c) {
            const cpu::Q8KBlock& xb = xq[static_cast<size_t>(t * kBlocks + c / 256)];
            const double w = reference(r, c), xhat = dequantised(xb, static_cast<int>(c % 256));
            with_quantised += w * xhat;
            with_float += w * x[static_cast<size_t>(t * kCols + c)];
            magnitude += std::fabs(w * xhat);
            rounding_bound += std::fabs(w) * xb.d / 2;
          }
          const double got = y[static_cast<size_t>(t * kRows + r)];
          const std::string where = std::string(from_file_blocks ? "kquant_matmul" : "kquant_product") + ", token " +
                                    std::to_string(t) + " of " + std::to_string(tokens) + ", row " + std::to_string(r);
          EXPECT_NEAR(got, with_quantised, 1e-5 * magnitude + 1e-30) << where;
          EXPECT_NEAR(got, with_float, rounding_bound + 1e-5 * magnitude + 1e-30) << where;
        }
      }
    }
  }
}

// Both paths unpack to the same bytes.
TEST_P(KQuant, PathsUnpackIdentically) {
  std::vector<cpu::KUnpacked> portable(unpacked_.size());
  cpu::unpack_kblocks(kformat_of(type()), fixture_.data.data(), kRows * kBlocks, portable.data(), KernelPath::Portable);
  for (size_t b = 0; b < portable.size(); ++b) {
    EXPECT_EQ(0, std::memcmp(&portable[b], &unpacked_[b], sizeof(cpu::KUnpacked))) << "block " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(
    TypesAndPaths, KQuant,
    ::testing::Combine(::testing::Values(DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K),
                       ::testing::Values(KernelPath::Avx512Vnni, KernelPath::Avx2, KernelPath::Portable)),
    [](const ::testing::TestParamInfo<std::tuple<DType, KernelPath>>& p) {
      return std::string(dtype_name(std::get<0>(p.param))) + "_" +
             std::string(cpu::kernel_path_name(std::get<1>(p.param)));
    });

// The AVX-512 products promise the AVX2 path's floats bit for bit (kquant.h):
// same integer lanes, same float operations in the same order. Checked on
// both entry points, for every remainder of the token groups and odd row
// ranges, on the fixture's blocks.
class KQuantAvx512 : public ::testing::TestWithParam<DType> {
 protected:
  void SetUp() override {
    if (!cpu::can_run(KernelPath::Avx512Vnni)) GTEST_SKIP() << "this CPU cannot run the avx512vnni path";
    ASSERT_TRUE(cpu::can_run(KernelPath::Avx2));  // implied by avx512vnni
    fixture_ = testing::load_quant_fixture(type());
    ASSERT_EQ(fixture_.expected.size(), static_cast<size_t>(kRows * kCols));
    unpacked_.resize(kRows * kBlocks);
    cpu::unpack_kblocks(kformat_of(type()), fixture_.data.data(), kRows * kBlocks, unpacked_.data(), KernelPath::Avx2);
  }
  DType type() const { return GetParam(); }

  testing::QuantFixture fixture_;
  std::vector<cpu::KUnpacked> unpacked_;  // [kRows, kBlocks]
};

TEST_P(KQuantAvx512, ProductsEqualTheAvx2OnesBitForBit) {
  const int64_t row_bytes = kBlocks * cpu::kformat_block_bytes(kformat_of(type()));
  for (const int64_t tokens : {1, 2, 3, 4, 5, 6, 7, 8, 9, 17}) {
    const std::vector<float> x = random_activations(tokens * kCols, static_cast<uint32_t>(100 + tokens));
    std::vector<cpu::Q8KBlock> xq(static_cast<size_t>(tokens * kBlocks));
    for (int64_t t = 0; t < tokens; ++t) {
      cpu::quantize_q8k(x.data() + t * kCols, kCols, xq.data() + t * kBlocks, KernelPath::Avx2);
    }
    for (const bool from_file_blocks : {false, true}) {
      std::vector<float> y[2];
      for (const KernelPath p : {KernelPath::Avx2, KernelPath::Avx512Vnni}) {
        std::vector<float>& out = y[p == KernelPath::Avx2 ? 0 : 1];
        out.assign(static_cast<size_t>(tokens * kRows), NAN);
        for (const auto& [first, last] : {std::pair<int64_t, int64_t>{0, 1}, {1, 6}, {6, kRows}}) {
          if (from_file_blocks) {
            cpu::kquant_matmul(kformat_of(type()), fixture_.data.data(), row_bytes, kBlocks, first, last, xq.data(),
                               tokens, out.data(), kRows, p);
          } else {
            cpu::kquant_product(unpacked_.data() + first * kBlocks, last - first, kBlocks, xq.data(), tokens,
                                out.data() + first, kRows, p);
          }
        }
      }
      for (size_t i = 0; i < y[0].size(); ++i) {
        ASSERT_EQ(std::memcmp(&y[0][i], &y[1][i], sizeof(float)), 0)
            << (from_file_blocks ? "kquant_matmul" : "kquant_product") << ", " << tokens << " tokens, token "
            << i / kRows << " row " << i % kRows << ": avx2 " << y[0][i] << ", avx512vnni " << y[1][i];
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Types, KQuantAvx512,
                         ::testing::Values(DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K),
                         [](const ::testing::TestParamInfo<DType>& p) { return std::string(dtype_name(p.param)); });

}  // namespace
}  // namespace neuronlens

// The decode's micro-kernel sets (backends/cpu/logit_kernels.h) against
// float64 products: shapes that are not multiples of any tile, depths that
// take one to three k chunks (the later ones add into C), odd depths (a bf16
// pair padded with zero), and windows of panels inside the head. Every set
// has a test; a set this CPU cannot run skips, naming what it lacks.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "backends/cpu/logit_kernels.h"
#include "backends/cpu/logit_panels.h"
#include "random_matrix.h"

namespace neuronlens::cpu {
namespace {

using neuronlens::testing::exact_dot;
using neuronlens::testing::random_matrix;

struct Shape {
  int64_t m, n, k, first_panel, panels;  // A [m, k], B [n, k], C's panels [first, first + panels)
};

// gamma(n) = n u / (1 - n u), u = 2^-24: the bound of a float32 sum of n
// terms relative to the sum of their magnitudes.
double gamma_of(int64_t n) {
  const double nu = static_cast<double>(n) * std::ldexp(1.0, -24);
  return nu / (1 - nu);
}

// bf16 rounding of every element (what the bf16 product multiplies).
std::vector<float> rounded_to_bf16(std::vector<float> v) {
  for (float& x : v) x = from_bf16(to_bf16(x));
  return v;
}

// Runs the product of `s` with the set's float32 or bf16 kernel into C
// [padded m, ldc].
std::vector<float> product(const LogitKernels& k, const Shape& s, bool bf16, const std::vector<float>& a, int64_t lda,
                           const std::vector<float>& b, int64_t ldb, int64_t ldc) {
  LhsPanels lhs;
  RhsPanels rhs;
  if (bf16) {
    lhs.pack_bf16(a.data(), s.m, s.k, lda, k.mr);
    rhs.pack_bf16(b.data(), s.n, s.k, ldb, k.nr);
  } else {
    lhs.pack_f32(a.data(), s.m, s.k, lda, k.mr);
    rhs.pack_f32(b.data(), s.n, s.k, ldb, k.nr);
  }
  EXPECT_EQ(rhs.at(s.n - 1, s.k - 1), bf16 ? from_bf16(to_bf16(b[static_cast<size_t>((s.n - 1) * ldb + s.k - 1)]))
                                           : b[static_cast<size_t>((s.n - 1) * ldb + s.k - 1)]);
  std::vector<float> c(static_cast<size_t>(lhs.padded_rows() * ldc), NAN);
  if (bf16) {
    k.product_bf16(lhs.bf16(), lhs.panels(), rhs.bf16_panel(s.first_panel), s.panels, rhs.depth(), c.data(), ldc);
  } else {
    k.product_f32(lhs.f32(), lhs.panels(), rhs.f32_panel(s.first_panel), s.panels, rhs.depth(), c.data(), ldc);
  }
  return c;
}

std::vector<Shape> shapes_for(const LogitKernels& k) {
  // Depths of one, two and three chunks (the chunk is 320 steps at W = 8, 160
  // at W = 16; bf16 steps are pairs), odd and even.
  return {Shape{1, k.nr, 5, 0, 1}, Shape{k.mr, 3 * k.nr, 256, 1, 2}, Shape{2 * k.mr + 1, 300, 601, 2, 5},
          Shape{7, 50, 700, 0, (50 + k.nr - 1) / k.nr}};
}

void expect_set_matches_float64(LogitKernelSet set) {
  if (!can_run(set)) {
    GTEST_SKIP() << "kernel set " << logit_kernel_set_name(set) << " needs " << required_cpu_features(set)
                 << ", which this CPU lacks";
  }
  const LogitKernels& k = logit_kernels(set);
  for (bool bf16 : {false, true}) {
    for (const Shape& s : shapes_for(k)) {
      SCOPED_TRACE(std::string(k.name) + (bf16 ? " bf16" : " fp32") + " m=" + std::to_string(s.m) +
                   " n=" + std::to_string(s.n) + " k=" + std::to_string(s.k));
      const int64_t lda = s.k + 3, ldb = s.k + 1;  // leading dimensions wider than the rows
      const std::vector<float> a = random_matrix(s.m, lda, 1), b = random_matrix(s.n, ldb, 2);
      const int64_t ldc = s.panels * k.nr + 5;
      const std::vector<float> c = product(k, s, bf16, a, lda, b, ldb, ldc);
      // The bf16 product multiplies the rounded operands exactly and sums in
      // float32: against their float64 product it is within gamma(2k).
      const std::vector<float> ar = bf16 ? rounded_to_bf16(a) : a, br = bf16 ? rounded_to_bf16(b) : b;
      for (int64_t i = 0; i < s.m; ++i) {
        for (int64_t j = 0; j < s.panels * k.nr; ++j) {
          const int64_t row = s.first_panel * k.nr + j;
          const float got = c[static_cast<size_t>(i * ldc + j)];
          if (row >= s.n) {  // padding rows of the last panel
            EXPECT_EQ(got, 0.0f) << "row " << i << " padding col " << j;
            continue;
          }
          const auto exact = exact_dot(ar.data() + i * lda, br.data() + row * ldb, s.k);
          EXPECT_NEAR(got, exact.value, gamma_of(2 * s.k) * exact.abs_sum) << "row " << i << " col " << row;
        }
      }
    }
  }
}

TEST(LogitKernels, Portable8MatchesFloat64) { expect_set_matches_float64(LogitKernelSet::Portable8); }
TEST(LogitKernels, Portable16MatchesFloat64) { expect_set_matches_float64(LogitKernelSet::Portable16); }
TEST(LogitKernels, Avx2MatchesFloat64) { expect_set_matches_float64(LogitKernelSet::Avx2); }
TEST(LogitKernels, Avx512MatchesFloat64) { expect_set_matches_float64(LogitKernelSet::Avx512); }
TEST(LogitKernels, Avx512Bf16MatchesFloat64) { expect_set_matches_float64(LogitKernelSet::Avx512Bf16); }

// Emulated bf16 pairs round as vdpbf16ps does (logit_kernels.h): products
// exact, one rounding per step, odd element first. So every set of one
// width gives the same bits, whether it emulates the pairs or not: avx2
// equals portable8, and avx512 and avx512bf16 equal portable16.
void expect_same_bf16_bits(LogitKernelSet set, LogitKernelSet portable) {
  if (!can_run(set)) {
    GTEST_SKIP() << "kernel set " << logit_kernel_set_name(set) << " needs " << required_cpu_features(set)
                 << ", which this CPU lacks";
  }
  const LogitKernels &k = logit_kernels(set), &p = logit_kernels(portable);
  ASSERT_EQ(k.mr, p.mr);
  ASSERT_EQ(k.nr, p.nr);
  for (const Shape& s : shapes_for(k)) {
    const int64_t lda = s.k, ldb = s.k, ldc = s.panels * k.nr;
    const std::vector<float> a = random_matrix(s.m, lda, 3), b = random_matrix(s.n, ldb, 4);
    const std::vector<float> got = product(k, s, true, a, lda, b, ldb, ldc);
    const std::vector<float> want = product(p, s, true, a, lda, b, ldb, ldc);
    for (size_t i = 0; i < static_cast<size_t>(s.m * ldc); ++i) {
      ASSERT_EQ(got[i], want[i]) << k.name << " vs " << p.name << " k=" << s.k << " at " << i;
    }
  }
}

TEST(LogitKernels, Avx2Bf16EqualsPortable8Bits) { expect_same_bf16_bits(LogitKernelSet::Avx2, LogitKernelSet::Portable8); }
TEST(LogitKernels, Avx512Bf16EqualsPortable16Bits) {
  expect_same_bf16_bits(LogitKernelSet::Avx512, LogitKernelSet::Portable16);
}
TEST(LogitKernels, NativeBf16EqualsPortable16Bits) {
  expect_same_bf16_bits(LogitKernelSet::Avx512Bf16, LogitKernelSet::Portable16);
}

TEST(LogitKernels, Bf16RoundsToNearestEven) {
  // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: ties go to the even 1.0.
  // 1 + 3 * 2^-8 lies halfway between 1 + 2^-7 (odd) and 1 + 2^-6: up.
  EXPECT_EQ(to_bf16(1.0f), 0x3f80);
  EXPECT_EQ(to_bf16(1.0f + std::ldexp(1.0f, -8)), 0x3f80);
  EXPECT_EQ(to_bf16(1.0f + 3 * std::ldexp(1.0f, -8)), 0x3f82);
  EXPECT_EQ(to_bf16(1.0f + std::ldexp(1.0f, -8) + std::ldexp(1.0f, -20)), 0x3f81);  // past halfway
  EXPECT_EQ(to_bf16(-2.0f), 0xc000);
  EXPECT_EQ(to_bf16(std::ldexp(1.0f, -130)), 0x0000);   // subnormal: flushed, as vdpbf16ps reads it
  EXPECT_EQ(to_bf16(-std::ldexp(1.0f, -130)), 0x8000);  // keeps its sign
  EXPECT_TRUE(std::isnan(from_bf16(to_bf16(NAN))));
  EXPECT_EQ(to_bf16(INFINITY), 0x7f80);
  EXPECT_EQ(from_bf16(0x3f81), 1.0f + std::ldexp(1.0f, -7));
}

TEST(LogitKernels, FastestFloat32SetRunsHere) {
  EXPECT_TRUE(can_run(fastest_f32_kernel_set()));
  EXPECT_TRUE(can_run(LogitKernelSet::Portable8));
  EXPECT_TRUE(can_run(LogitKernelSet::Portable16));
  for (LogitKernelSet set : all_logit_kernel_sets()) {
    if (!can_run(set)) {
      EXPECT_THROW(logit_kernels(set), std::exception) << logit_kernel_set_name(set);
    } else {
      EXPECT_EQ(logit_kernels(set).name, logit_kernel_set_name(set));
    }
  }
}

}  // namespace
}  // namespace neuronlens::cpu

// Our packed micro-kernel product (backends/cpu/packed_gemm) against float64
// products: shapes that are not multiples of the 6 x 16 tile, depths that
// take one, two and three k chunks (the later ones accumulate into C), and
// column windows that start inside the head.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backends/cpu/packed_gemm.h"
#include "random_matrix.h"

namespace neuronlens::cpu {
namespace {

using neuronlens::testing::exact_dot;
using neuronlens::testing::random_matrix;

struct Shape {
  int64_t m, n, k, col0, cols;  // A [m, k], B [n, k], C's columns [col0, col0 + cols)
};

void expect_product_matches(const Shape& s, MicroKernelChoice kernel) {
  SCOPED_TRACE(kernel == MicroKernelChoice::Fastest ? "fastest kernel" : "portable kernel");
  const int64_t lda = s.k + 3, ldb = s.k + 1;  // leading dimensions wider than the rows
  const std::vector<float> a = random_matrix(s.m, lda, 1), b = random_matrix(s.n, ldb, 2);
  LhsPanels lhs;
  lhs.pack(a.data(), s.m, s.k, lda);
  RhsPanels rhs;
  rhs.pack(b.data(), s.n, s.k, ldb);
  ASSERT_EQ(lhs.padded_rows() % kPanelRowsA, 0);
  EXPECT_EQ(rhs.at(s.n - 1, s.k - 1), b[static_cast<size_t>((s.n - 1) * ldb + s.k - 1)]);
  const int64_t cols16 = (s.cols + 15) / 16 * 16, ldc = cols16 + 5;
  std::vector<float> c(static_cast<size_t>(lhs.padded_rows() * ldc), NAN);
  packed_product(lhs, rhs, s.col0, s.cols, c.data(), ldc, kernel);
  for (int64_t i = 0; i < s.m; ++i) {
    for (int64_t j = 0; j < s.cols; ++j) {
      const auto exact = exact_dot(a.data() + i * lda, b.data() + (s.col0 + j) * ldb, s.k);
      EXPECT_NEAR(c[static_cast<size_t>(i * ldc + j)], exact.value,
                  2 * exact.abs_sum * 1.2e-7 * std::sqrt(static_cast<double>(s.k)) + 1e-6)
          << "m=" << s.m << " k=" << s.k << " row " << i << " col " << s.col0 + j;
    }
  }
  // Head rows past n (padding of the last panel) give zero logits.
  for (int64_t j = s.n - s.col0; j < cols16; ++j) EXPECT_EQ(c[static_cast<size_t>(j)], 0.0f) << "col " << j;
}

TEST(PackedGemm, ProductEqualsFloat64Products) {
  for (const Shape& s : {Shape{1, 16, 5, 0, 16}, Shape{6, 40, 256, 16, 24}, Shape{13, 300, 600, 32, 261},
                         Shape{7, 50, 257, 48, 2}}) {
    expect_product_matches(s, MicroKernelChoice::Fastest);
    expect_product_matches(s, MicroKernelChoice::Portable);
  }
}

}  // namespace
}  // namespace neuronlens::cpu

// One level of Strassen-Winograd (backends/cpu/strassen) against float64
// products, and the decode's two product paths against each other.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "backends/cpu/strassen.h"
#include "random_matrix.h"

namespace neuronlens::cpu {
namespace {

using neuronlens::testing::exact_dot;
using neuronlens::testing::random_matrix;

// Every row of C = A · B^T from the seven products, against float64 dot
// products, for odd and even row counts (the odd one pads A with a zero row)
// and a leading dimension wider than the rows.
TEST(Strassen, RowsEqualFloat64Products) {
  struct Shape {
    int64_t m, n, k, ldb;
  };
  for (const Shape& s : {Shape{8, 6, 4, 4}, Shape{7, 10, 12, 16}, Shape{33, 64, 96, 96}, Shape{1, 2, 2, 2}}) {
    const std::vector<float> a = random_matrix(s.m, s.k, 1), b = random_matrix(s.n, s.ldb, 2);
    ASSERT_TRUE(strassen_fits(s.n, s.k));
    StrassenLhs lhs;
    lhs.prepare(a.data(), s.m, s.k, s.k);
    StrassenRhs rhs;
    rhs.prepare(b.data(), s.n, s.k, s.ldb);
    StrassenProducts products;
    products.compute(lhs, rhs);
    ASSERT_EQ(lhs.rows(), s.m);
    ASSERT_EQ(lhs.half_rows(), (s.m + 1) / 2);
    std::vector<float> top(static_cast<size_t>(s.n)), bottom(static_cast<size_t>(s.n));
    const int64_t h = lhs.half_rows();
    for (int64_t i = 0; i < h; ++i) {
      products.rows(i, top.data(), bottom.data());
      for (int64_t half = 0; half < 2; ++half) {
        const int64_t row = i + half * h;
        if (row >= s.m) continue;
        for (int64_t j = 0; j < s.n; ++j) {
          const auto exact = exact_dot(a.data() + row * s.k, b.data() + j * s.ldb, s.k);
          const float got = (half == 0 ? top : bottom)[static_cast<size_t>(j)];
          // A few float32 roundings of sums of |a||b| terms; a wrong formula
          // is off by whole products (order 1 here).
          EXPECT_NEAR(got, exact.value, 8 * exact.abs_sum * 1.2e-7 * std::sqrt(static_cast<double>(s.k)) + 1e-6)
              << "m=" << s.m << " n=" << s.n << " k=" << s.k << " row " << row << " col " << j;
        }
      }
    }
  }
}

// The packed path's products (our kernel, operands packed per tile) give the
// same rows, for every full tile of a head and an odd block of vectors.
TEST(Strassen, PackedRowsEqualFloat64Products) {
  constexpr int64_t m = 13, vocab = 100, k = 600, tile = 32;  // 3 full tiles; k takes three chunks
  const std::vector<float> a = random_matrix(m, k, 3), head = random_matrix(vocab, k, 4);
  PackedStrassenRhs rhs;
  rhs.prepare(head.data(), vocab, k, tile);
  ASSERT_EQ(rhs.tiles(), 3);
  ASSERT_EQ(rhs.tile_rows(), tile);
  StrassenLhs lhs;
  lhs.prepare(a.data(), m, k, k);
  PackedStrassenLhs packed_lhs;
  packed_lhs.prepare(lhs);
  const int64_t h = packed_lhs.half_rows();
  ASSERT_EQ(h, 7);
  StrassenProducts products;
  std::vector<float> top(static_cast<size_t>(tile)), bottom(static_cast<size_t>(tile));
  for (int64_t t = 0; t < rhs.tiles(); ++t) {
    products.compute(packed_lhs, rhs, t);
    for (int64_t i = 0; i < h; ++i) {
      products.rows(i, top.data(), bottom.data());
      for (int64_t half = 0; half < 2; ++half) {
        const int64_t row = i + half * h;
        if (row >= m) continue;
        for (int64_t j = 0; j < tile; ++j) {
          const int64_t token = t * tile + j;
          const auto exact = exact_dot(a.data() + row * k, head.data() + token * k, k);
          const float got = (half == 0 ? top : bottom)[static_cast<size_t>(j)];
          EXPECT_NEAR(got, exact.value, 8 * exact.abs_sum * 1.2e-7 * std::sqrt(static_cast<double>(k)) + 1e-6)
              << "tile " << t << " row " << row << " col " << j;
        }
      }
    }
  }
}

TEST(Strassen, FitsOnlyEvenShapes) {
  EXPECT_TRUE(strassen_fits(2048, 576));
  EXPECT_FALSE(strassen_fits(2047, 576));
  EXPECT_FALSE(strassen_fits(2048, 575));
  EXPECT_FALSE(strassen_fits(0, 2));
}

}  // namespace
}  // namespace neuronlens::cpu

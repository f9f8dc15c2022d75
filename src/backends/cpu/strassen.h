// One level of Strassen–Winograd for the decode's product C = A · B^T, with
// A [m, k] a block of vectors and B [n, k] a tile of the LM head: seven
// half-size GEMMs instead of eight (12.5% fewer multiplications), each still
// a full-speed BLAS call.
//
// The decode never needs C itself, only its rows, one at a time, to fold them
// into each vector's softmax and top-k. So the seven products are kept apart
// and combined row by row as the fold asks (`rows`); a row of C costs a few
// vector adds of products that are still in cache, instead of the
// usual four C-sized passes of a Strassen step.
//
// Shapes: m, n and k are split in halves h = m/2 (rounded up: A is padded
// with a zero row), w = n/2 and q = k/2; n and k must be even.
//   A = [A11 A12; A21 A22]  (A11 = A[0:h, 0:q], A12 = A[0:h, q:k], ...)
//   B = [B11 B21; B12 B22]  so that B^T = [B11^T B12^T; B21^T B22^T] in the
//       textbook's naming: B11 = B[0:w, 0:q], B21 = B[0:w, q:k],
//       B12 = B[w:n, 0:q], B22 = B[w:n, q:k].
// Winograd's sums, then products:
//   S1 = A21 + A22   S2 = S1 - A11   S3 = A11 - A21   S4 = A12 - S2
//   T1 = B12 - B11   T2 = B22 - T1   T3 = B22 - B12   T4 = T2 - B21
//   P1 = A11 B11^T   P2 = A12 B21^T  P3 = S4 B22^T    P4 = A22 T4^T
//   P5 = S1 T1^T     P6 = S2 T2^T    P7 = S3 T3^T
// and C's quarters, rows i of the top and i + h of the bottom half:
//   C11 = P1 + P2          C12 = P1 + P6 + P5 + P3
//   C21 = P1 + P6 + P7 - P4  C22 = P1 + P6 + P7 + P5
// The rounding differs from a plain GEMM's (errors bounded by the norms of
// A's and B's rows rather than each product); the decode re-scores its top
// candidates in float64 either way.
#pragma once

#include <array>
#include <cstdint>
#include <vector>

#include "backends/cpu/packed_gemm.h"

namespace neuronlens::cpu {

// Whether a product of this shape can take the Strassen path.
bool strassen_fits(int64_t n, int64_t k);

// The B side of one tile, shared by every block of vectors: T1..T4 (as many
// floats as the tile itself). B must outlive it.
class StrassenRhs {
 public:
  // b [n, k] with leading dimension ldb; n and k even.
  void prepare(const float* b, int64_t n, int64_t k, int64_t ldb);
  int64_t rows() const { return n_; }

 private:
  friend class StrassenProducts;
  friend class PackedStrassenRhs;
  // B's quarters in the textbook's naming (see above), leading dimension ldb.
  const float* b11() const { return b_; }
  const float* b21() const { return b_ + k_ / 2; }
  const float* b12() const { return b_ + (n_ / 2) * ldb_; }
  const float* b22() const { return b12() + k_ / 2; }
  // T1..T4 (i = 1..4), [n/2, k/2] each.
  float* t(int i) { return t_.data() + (i - 1) * (n_ / 2) * (k_ / 2); }
  const float* t(int i) const { return t_.data() + (i - 1) * (n_ / 2) * (k_ / 2); }

  const float* b_ = nullptr;
  int64_t n_ = 0, k_ = 0, ldb_ = 0;
  std::vector<float> t_;  // [4, n/2, k/2]: T1, T2, T3, T4
};

// The A side of one block of vectors: a zero-padded copy of A and S1..S4.
class StrassenLhs {
 public:
  void prepare(const float* a, int64_t m, int64_t k, int64_t lda);
  int64_t rows() const { return m_; }      // real rows (the padding row excluded)
  int64_t half_rows() const { return h_; }

 private:
  friend class StrassenProducts;
  friend class PackedStrassenLhs;
  // A's quarters, leading dimension k.
  const float* a11() const { return a_.data(); }
  const float* a12() const { return a_.data() + k_ / 2; }
  const float* a21() const { return a_.data() + h_ * k_; }
  const float* a22() const { return a21() + k_ / 2; }
  // S1..S4 (i = 1..4), [h, k/2] each.
  float* s(int i) { return s_.data() + (i - 1) * h_ * (k_ / 2); }
  const float* s(int i) const { return s_.data() + (i - 1) * h_ * (k_ / 2); }

  int64_t m_ = 0, h_ = 0, k_ = 0;
  std::vector<float> a_;  // [2h, k]
  std::vector<float> s_;  // [4, h, k/2]: S1, S2, S3, S4
};

// The same seven products with our packed micro-kernel (packed_gemm.h)
// instead of BLAS: each product's B-side operand (B11, B21, B22, T4, T1, T2,
// T3, in product order) is packed once for every tile of the LM head, and
// each block's A-side operands once per block.
class PackedStrassenRhs {
 public:
  // head [V, k] row-major, k even, cut into tiles of `tile` rows (a multiple
  // of 32); only the full tiles are packed (tiles() of them). In parallel.
  void prepare(const float* head, int64_t vocab, int64_t k, int64_t tile);
  int64_t tiles() const { return tiles_; }
  int64_t tile_rows() const { return 2 * w_; }

 private:
  friend class StrassenProducts;
  int64_t tiles_ = 0, w_ = 0;
  // Operand i's rows [t * w, (t + 1) * w) belong to tile t.
  std::array<RhsPanels, 7> operands_;
};

class PackedStrassenLhs {
 public:
  void prepare(const StrassenLhs& a);
  int64_t half_rows() const { return h_; }

 private:
  friend class StrassenProducts;
  int64_t h_ = 0;
  std::array<LhsPanels, 7> operands_;  // A11, A12, S4, A22, S1, S2, S3
};

// The seven products of one block and one tile, and C's rows from them.
class StrassenProducts {
 public:
  // P1..P7 [7, h, w] with single-threaded BLAS calls (the caller's thread).
  void compute(const StrassenLhs& a, const StrassenRhs& b);
  // The same for tile `tile` of a packed head, with our kernel.
  void compute(const PackedStrassenLhs& a, const PackedStrassenRhs& b, int64_t tile);
  // Row i (< h) of C into top[0..2w), and row h + i into bottom[0..2w).
  void rows(int64_t i, float* top, float* bottom) const;

 private:
  int64_t rows_ = 0, w_ = 0;  // each product [rows_, w_] (rows_ >= h: padding)
  std::vector<float> p_;
};

}  // namespace neuronlens::cpu

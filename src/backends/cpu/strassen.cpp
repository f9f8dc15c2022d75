#include "backends/cpu/strassen.h"

#include <algorithm>
#include <cstring>

#include "backends/cpu/cpu_clones.h"
#include "backends/cpu/gemm.h"

namespace neuronlens::cpu {
namespace {

// dst[r, :cols] = x[r, :cols] + sign * y[r, :cols] for rows [first, last).
NEURONLENS_CPU_CLONES
void add_rows(int64_t first, int64_t last, int64_t cols, const float* x, int64_t ldx, const float* y, int64_t ldy,
              float sign, float* dst, int64_t ldd) {
  for (int64_t r = first; r < last; ++r) {
    const float* xr = x + r * ldx;
    const float* yr = y + r * ldy;
    float* d = dst + r * ldd;
    if (sign > 0) {
      for (int64_t c = 0; c < cols; ++c) d[c] = xr[c] + yr[c];
    } else {
      for (int64_t c = 0; c < cols; ++c) d[c] = xr[c] - yr[c];
    }
  }
}

NEURONLENS_CPU_CLONES
void combine(int64_t w, const float* p1, const float* p2, const float* p3, const float* p4, const float* p5,
             const float* p6, const float* p7, float* top, float* bottom) {
  for (int64_t j = 0; j < w; ++j) {
    const float u2 = p1[j] + p6[j];
    const float u3 = u2 + p7[j];
    top[j] = p1[j] + p2[j];
    top[w + j] = (u2 + p5[j]) + p3[j];
    bottom[j] = u3 - p4[j];
    bottom[w + j] = u3 + p5[j];
  }
}

}  // namespace

bool strassen_fits(int64_t n, int64_t k) { return n >= 2 && k >= 2 && n % 2 == 0 && k % 2 == 0; }

void StrassenRhs::prepare(const float* b, int64_t n, int64_t k, int64_t ldb) {
  b_ = b;
  n_ = n;
  k_ = k;
  ldb_ = ldb;
  const int64_t w = n / 2, q = k / 2;
  t_.resize(static_cast<size_t>(4 * w * q));
  add_rows(0, w, q, b12(), ldb, b11(), ldb, -1, t(1), q);  // T1 = B12 - B11
  add_rows(0, w, q, b22(), ldb, t(1), q, -1, t(2), q);     // T2 = B22 - T1
  add_rows(0, w, q, b22(), ldb, b12(), ldb, -1, t(3), q);  // T3 = B22 - B12
  add_rows(0, w, q, t(2), q, b21(), ldb, -1, t(4), q);     // T4 = T2 - B21
}

void StrassenLhs::prepare(const float* a, int64_t m, int64_t k, int64_t lda) {
  m_ = m;
  h_ = (m + 1) / 2;
  k_ = k;
  const int64_t q = k / 2;
  a_.resize(static_cast<size_t>(2 * h_ * k));
  for (int64_t r = 0; r < m; ++r) std::memcpy(a_.data() + r * k, a + r * lda, static_cast<size_t>(k) * sizeof(float));
  if (m < 2 * h_) std::fill(a_.begin() + m * k, a_.end(), 0.0f);  // the padding row
  s_.resize(static_cast<size_t>(4 * h_ * q));
  add_rows(0, h_, q, a21(), k, a22(), k, +1, s(1), q);  // S1 = A21 + A22
  add_rows(0, h_, q, s(1), q, a11(), k, -1, s(2), q);   // S2 = S1 - A11
  add_rows(0, h_, q, a11(), k, a21(), k, -1, s(3), q);  // S3 = A11 - A21
  add_rows(0, h_, q, a12(), k, s(2), q, -1, s(4), q);   // S4 = A12 - S2
}

void StrassenProducts::compute(const StrassenLhs& a, const StrassenRhs& b) {
  const int64_t k = a.k_, q = k / 2, h = a.h_, w = b.n_ / 2, ldb = b.ldb_;
  rows_ = h;
  w_ = w;
  p_.resize(static_cast<size_t>(7 * h * w));
  float* p = p_.data();
  const int64_t size = h * w;
  gemm_abt(h, w, q, a.a11(), k, b.b11(), ldb, p + 0 * size, w);  // P1 = A11 B11^T
  gemm_abt(h, w, q, a.a12(), k, b.b21(), ldb, p + 1 * size, w);  // P2 = A12 B21^T
  gemm_abt(h, w, q, a.s(4), q, b.b22(), ldb, p + 2 * size, w);   // P3 = S4 B22^T
  gemm_abt(h, w, q, a.a22(), k, b.t(4), q, p + 3 * size, w);     // P4 = A22 T4^T
  gemm_abt(h, w, q, a.s(1), q, b.t(1), q, p + 4 * size, w);      // P5 = S1 T1^T
  gemm_abt(h, w, q, a.s(2), q, b.t(2), q, p + 5 * size, w);      // P6 = S2 T2^T
  gemm_abt(h, w, q, a.s(3), q, b.t(3), q, p + 6 * size, w);      // P7 = S3 T3^T
}

void PackedStrassenRhs::prepare(const float* head, int64_t vocab, int64_t k, int64_t tile) {
  w_ = tile / 2;
  tiles_ = vocab / tile;
  const int64_t q = k / 2;
  for (RhsPanels& op : operands_) op.allocate(tiles_ * w_, q);
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < tiles_; ++t) {
    StrassenRhs sums;  // this tile's T1..T4, row-major, for packing
    sums.prepare(head + t * tile * k, tile, k, k);
    const int64_t first = t * w_;
    operands_[0].pack_rows(first, sums.b11(), w_, k);
    operands_[1].pack_rows(first, sums.b21(), w_, k);
    operands_[2].pack_rows(first, sums.b22(), w_, k);
    operands_[3].pack_rows(first, sums.t(4), w_, q);
    operands_[4].pack_rows(first, sums.t(1), w_, q);
    operands_[5].pack_rows(first, sums.t(2), w_, q);
    operands_[6].pack_rows(first, sums.t(3), w_, q);
  }
}

void PackedStrassenLhs::prepare(const StrassenLhs& a) {
  const int64_t h = a.h_, k = a.k_, q = k / 2;
  h_ = h;
  operands_[0].pack(a.a11(), h, q, k);
  operands_[1].pack(a.a12(), h, q, k);
  operands_[2].pack(a.s(4), h, q, q);
  operands_[3].pack(a.a22(), h, q, k);
  operands_[4].pack(a.s(1), h, q, q);
  operands_[5].pack(a.s(2), h, q, q);
  operands_[6].pack(a.s(3), h, q, q);
}

void StrassenProducts::compute(const PackedStrassenLhs& a, const PackedStrassenRhs& b, int64_t tile) {
  rows_ = a.operands_[0].padded_rows();
  w_ = b.w_;
  const int64_t size = rows_ * w_;
  p_.resize(static_cast<size_t>(7 * size));
  // Product i = A-side operand i times B-side operand i, as in compute() above.
  for (size_t i = 0; i < 7; ++i) {
    packed_product(a.operands_[i], b.operands_[i], tile * w_, w_, p_.data() + static_cast<int64_t>(i) * size, w_);
  }
}

void StrassenProducts::rows(int64_t i, float* top, float* bottom) const {
  const int64_t size = rows_ * w_;
  const float* p = p_.data() + i * w_;
  combine(w_, p, p + size, p + 2 * size, p + 3 * size, p + 4 * size, p + 5 * size, p + 6 * size, top, bottom);
}

}  // namespace neuronlens::cpu

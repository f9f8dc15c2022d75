// Our own float32 product C = A · B^T for the decode, with B (the LM head)
// packed once for the whole map instead of by BLAS on every call.
//
// Why not sgemm: the decode multiplies the same LM head by every layer's
// vectors. A BLAS call re-packs its share of the head each time and writes
// all of C to memory (after zeroing it, for beta = 0); here the head is laid
// out once in the kernel's order, and C is produced in blocks small enough
// to stay in the core's L2 cache while the caller folds them.
//
// Layout (the usual GotoBLAS/BLIS one, for a 6 x 16 AVX2 micro-kernel: six
// vectors times sixteen tokens, twelve 8-float accumulators):
//   RhsPanels  B [n, k] -> [ceil(n/16)][k][16]: panel p holds rows
//              16p..16p+15 column by column; rows past n are zero.
//   LhsPanels  A [m, k] -> [ceil(m/6)][k][6]; rows past m are zero.
// The product walks k in chunks of at most 320 so that one B panel chunk
// (16 x 320 floats, 20 KiB) stays in L1 while every A panel of the block
// passes over it.
#pragma once

#include <cstdint>
#include <memory>

namespace neuronlens::cpu {

constexpr int64_t kPanelRowsA = 6;   // vectors per micro-kernel tile
constexpr int64_t kPanelRowsB = 16;  // tokens per micro-kernel tile

// Whether this CPU runs the AVX2 + FMA micro-kernel (otherwise a portable
// one, correct but several times slower than BLAS).
bool packed_gemm_is_fast();

// 64-byte-aligned float buffer that grows on demand and keeps its capacity.
class AlignedFloats {
 public:
  float* data() { return data_.get(); }
  const float* data() const { return data_.get(); }
  void resize(int64_t n);  // contents are not kept

 private:
  struct Free {
    void operator()(float* p) const;
  };
  std::unique_ptr<float, Free> data_;
  int64_t capacity_ = 0;
};

class RhsPanels {
 public:
  // b [n, k] with leading dimension ldb (in parallel, OpenMP).
  void pack(const float* b, int64_t n, int64_t k, int64_t ldb);
  // Or piece by piece: room for n rows of k (rows past n zero), then rows
  // [first, first + count) from b; first must be a multiple of 16.
  void allocate(int64_t n, int64_t k);
  void pack_rows(int64_t first, const float* b, int64_t count, int64_t ldb);
  // Panel p's columns [k0, ...): 16 floats per column.
  const float* panel(int64_t p, int64_t k0) const { return data_.data() + (p * k_ + k0) * kPanelRowsB; }
  // B[row, j], read back from the panels (one value at a time: for checks).
  float at(int64_t row, int64_t j) const {
    return data_.data()[((row / kPanelRowsB) * k_ + j) * kPanelRowsB + row % kPanelRowsB];
  }

 private:
  AlignedFloats data_;
  int64_t k_ = 0;
};

class LhsPanels {
 public:
  // a [m, k] with leading dimension lda.
  void pack(const float* a, int64_t m, int64_t k, int64_t lda);
  int64_t padded_rows() const { return (m_ + kPanelRowsA - 1) / kPanelRowsA * kPanelRowsA; }
  int64_t depth() const { return k_; }
  const float* panel(int64_t p, int64_t k0) const { return data_.data() + (p * k_ + k0) * kPanelRowsA; }

 private:
  AlignedFloats data_;
  int64_t m_ = 0, k_ = 0;
};

// C[0:a.padded_rows(), 0:cols16] = A · B[col0 : col0 + cols16]^T, where
// col0 is a multiple of 16 and cols16 = cols rounded up to 16 (padding rows
// of A and B give zeros there). c has leading dimension ldc >= cols16 and
// room for a.padded_rows() rows. Runs on the calling thread.
// `kernel` picks the micro-kernel: the fastest this CPU runs, or the portable
// one (so that tests check it on AVX2 machines too).
enum class MicroKernelChoice { Fastest, Portable };
void packed_product(const LhsPanels& a, const RhsPanels& b, int64_t col0, int64_t cols, float* c, int64_t ldc,
                    MicroKernelChoice kernel = MicroKernelChoice::Fastest);

}  // namespace neuronlens::cpu

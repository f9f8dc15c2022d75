// The decode's operands laid out for the micro-kernels (logit_kernels.h):
// the usual GotoBLAS/BLIS packing, for a tile of mr vectors x nr tokens.
//   rhs (the LM head, B [n, k]) -> [ceil(n/nr)][k][nr]: panel p holds rows
//       nr p .. nr p + nr - 1 column by column; rows past n are zero.
//   lhs (a block of vectors, A [m, k]) -> [ceil(m/mr)][k][mr]; rows past m
//       are zero.
// The bf16 forms hold ceil(k/2) 32-bit words per row instead of k floats:
// elements 2t and 2t + 1 rounded to bf16, the even one in the low half (a
// zero pads an odd k).
#pragma once

#include <cstdint>
#include <cstring>
#include <memory>

namespace neuronlens::cpu {

// float -> bf16, rounded to nearest, ties to even; subnormals flushed to a
// signed zero (vdpbf16ps treats subnormal inputs as zero, so flushing here
// makes emulated and native products equal); NaN stays NaN.
inline uint16_t to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7f800000u) == 0) return static_cast<uint16_t>((u >> 16) & 0x8000u);  // zero or subnormal
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);  // NaN: keep it quiet
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<uint16_t>(u >> 16);
}
inline float from_bf16(uint16_t h) {
  const uint32_t u = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// 64-byte-aligned buffer of T that grows on demand and keeps its capacity.
template <typename T>
class AlignedBuffer {
 public:
  T* data() { return data_.get(); }
  const T* data() const { return data_.get(); }
  void resize(int64_t n);  // contents are not kept
  int64_t capacity() const { return capacity_; }

 private:
  struct Free {
    void operator()(T* p) const;
  };
  std::unique_ptr<T, Free> data_;
  int64_t capacity_ = 0;
};

// Panels of B (the LM head) for tiles nr tokens wide, float32 or bf16.
class RhsPanels {
 public:
  // b [n, k] with leading dimension ldb (in parallel, OpenMP).
  void pack_f32(const float* b, int64_t n, int64_t k, int64_t ldb, int64_t nr);
  void pack_bf16(const float* b, int64_t n, int64_t k, int64_t ldb, int64_t nr);
  int64_t rows() const { return n_; }
  int64_t depth() const { return depth_; }  // k, or k2 = ceil(k/2) words for bf16
  int64_t panel_rows() const { return nr_; }
  int64_t panels() const { return (n_ + nr_ - 1) / nr_; }
  const float* f32_panel(int64_t p) const { return f32_.data() + p * depth_ * nr_; }
  const uint32_t* bf16_panel(int64_t p) const { return bf16_.data() + p * depth_ * nr_; }
  // B[row, j] as packed (bf16 widened): for checks.
  float at(int64_t row, int64_t j) const;
  int64_t bytes() const;

 private:
  AlignedBuffer<float> f32_;
  AlignedBuffer<uint32_t> bf16_;
  bool is_bf16_ = false;
  int64_t n_ = 0, k_ = 0, depth_ = 0, nr_ = 16;
};

// Panels of A (a block of vectors) for tiles mr vectors high.
class LhsPanels {
 public:
  void pack_f32(const float* a, int64_t m, int64_t k, int64_t lda, int64_t mr);
  void pack_bf16(const float* a, int64_t m, int64_t k, int64_t lda, int64_t mr);
  int64_t rows() const { return m_; }
  int64_t panels() const { return (m_ + mr_ - 1) / mr_; }
  int64_t padded_rows() const { return panels() * mr_; }
  const float* f32() const { return f32_.data(); }
  const uint32_t* bf16() const { return bf16_.data(); }

 private:
  AlignedBuffer<float> f32_;
  AlignedBuffer<uint32_t> bf16_;
  int64_t m_ = 0, mr_ = 6;
};

}  // namespace neuronlens::cpu

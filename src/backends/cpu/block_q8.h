// Products with Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0 weights in 8-bit integer
// arithmetic, the way llama.cpp computes them: the activations are quantised
// 32 at a time (llama.cpp's Q8_0 blocks, and Q8_1's sum for the formats with
// an offset), and each block's integer dot product is exact before any float
// is touched. With x[i] ~ dx * qx[i] and a weight block d * q[i] (+ m):
//
//   sum_i w[i] x[i] ~ d * dx * sum_i q[i] qx[i]  (+ m * sx),   sx ~ dx * sum_i qx[i]
//
// dx and sx are rounded to fp16 as llama.cpp stores them, and qx uses the
// unrounded 127 / max |x|, as llama.cpp's quantiser does: both sides then
// multiply the same integers. The result differs from the float dot product
// of the dequantised weights by the activations' rounding, at most
// dx / 2 * sum_i |w[i]| per block: the price of the speed, and the price
// llama.cpp pays (the float-activation kernels, block_matvec.h, do not).
//
// Two implementations, chosen per call (KernelPath): AVX2 (vpmaddubsw over
// the weights' magnitudes and the activations carrying their signs, as
// llama.cpp's kernels; KernelPath::Avx512Vnni runs it too) and portable C++.
// Both form the same eight integer lanes per block (values 4l .. 4l + 3 in
// lane l) and add them into eight float lanes in the same order; the AVX2
// one fuses the multiply-adds, so the two differ by float rounding only.
#pragma once

#include <cstdint>

#include "backends/cpu/block_matvec.h"
#include "backends/cpu/kernel_path.h"

namespace neuronlens::cpu {

// 32 activations as 8-bit integers: x[i] ~ d * q[i], |q[i]| <= 127.
struct Q8Block {
  float d;      // max |x| / 127, rounded to fp16 (and widened back)
  float s;      // (max |x| / 127) * sum q, rounded to fp16: Q8_1's s, for Q4_1 and Q5_1's offset m
  int8_t q[32];
};

// Whether block_q8_matmul multiplies `format` (not F16 or BF16).
constexpr bool has_q8_kernel(BlockFormat format) {
  return format != BlockFormat::F16 && format != BlockFormat::BF16;
}

// Quantises x [cols] (cols a multiple of 32) into cols / 32 blocks as
// llama.cpp's quantize_row_q8_1 does: q = round-half-even(x * (127 / max |x|)).
void quantize_q8_blocks(const float* x, int64_t cols, Q8Block* out, KernelPath path = best_kernel_path());

// Rows [first_row, last_row) of W, stored as `format` blocks (row r at
// w + r * row_bytes, `blocks` blocks of 32 values), times `tokens` rows of x
// as Q8 blocks [tokens, blocks]: y[t * ldy + r]. has_q8_kernel(format) must
// hold. Throws Error for a SIMD KernelPath on a CPU or build without it.
void block_q8_matmul(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                     int64_t last_row, const Q8Block* x, int64_t tokens, float* y, int64_t ldy,
                     KernelPath path = best_kernel_path());

#if defined(__x86_64__)
namespace avx2 {
void quantize_q8_blocks(const float* x, int64_t cols, Q8Block* out);
void block_q8_matmul(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                     int64_t last_row, const Q8Block* x, int64_t tokens, float* y, int64_t ldy);
}  // namespace avx2
#endif

}  // namespace neuronlens::cpu

// Matrix-vector products straight from GGUF blocks, with float32
// activations: the generation step's products, where reading the weights
// from memory is the cost, so reading 0.56-2 bytes per weight instead of
// float32's 4 is the speed-up. Each weight is the value dequantisation gives
// (d * q + m with the block's fp16 scale d and offset m, widened exactly);
// the sum is grouped per block,
//   y[r] = sum_b ( d_b * sum_i q_bi x_bi  +  m_b * sum_i x_bi ),
// which differs from a float32 dot product of the dequantised row only in
// rounding order. x is not quantised.
//
// Block layouts (as in src/io/dequantize.cpp; 32 values, packed back to back;
// q is the integer that dequantisation multiplies by d, m = 0 where not listed):
//   Q4_0  18 B: half d; uint8 qs[16]             q[k] = lo4(qs[k]) - 8, q[k+16] = hi4(qs[k]) - 8
//   Q4_1  20 B: half d; half m; uint8 qs[16]     q[k] = lo4(qs[k]),     q[k+16] = hi4(qs[k])
//   Q5_0  22 B: half d; uint8 qh[4]; qs[16]      q[k] = (lo4(qs[k]) | bit k of qh << 4) - 16,
//                                                q[k+16] = (hi4(qs[k]) | bit k+16 of qh << 4) - 16
//   Q5_1  24 B: half d; half m; qh[4]; qs[16]    as Q5_0 without the - 16
//   Q8_0  34 B: half d; int8 qs[32]              q[i] = qs[i]
//   F16   64 B: half x[32]                       d = 1, q[i] = x[i]
//   BF16  64 B: bfloat16 x[32]                   d = 1, q[i] = x[i]
// F16 and BF16 have no blocks in GGUF; 32 values are one here so that every
// format has the same interface. Their row lengths must therefore be multiples
// of 32 too: the runtime guarantees that for the matrices it passes here.
//
// Two implementations, chosen per call (KernelPath, kernel_path.h): AVX2 (with FMA and F16C)
// on x86-64 CPUs that have it (KernelPath::Avx512Vnni runs it too: there is
// no AVX-512 version), and portable C++ everywhere. Both add the same
// terms in the same order (8 lanes per block, lane l taking values l, l+8,
// l+16, l+24; the lanes summed at the end of the row); the AVX2 kernel fuses
// multiply-adds, the portable one does not, so their results differ by
// rounding.
#pragma once

#include <cstdint>
#include <optional>

#include "backends/cpu/kernel_path.h"
#include "neuronlens/dtype.h"

namespace neuronlens::cpu {

enum class BlockFormat { Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, F16, BF16 };

// The format of a tensor type, or nullopt for a type these kernels lack.
std::optional<BlockFormat> block_format_of(DType type);

// y[r] = W[r, :] · x for rows [first_row, last_row) of W, stored as `format`
// blocks, row r starting at w + r * row_bytes; `cols` is a multiple of 32.
// `block_sums` [cols / 32] holds the sums of x over each block of 32 (see
// block_sums()); only Q4_1 and Q5_1 read it, it may be null for the others.
// Throws Error for a SIMD KernelPath on a CPU or build without it.
void block_matvec(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t first_row,
                  int64_t last_row, const float* x, const float* block_sums, float* y,
                  KernelPath path = best_kernel_path());

// The float32 values of `n_blocks` blocks, bit for bit what
// neuronlens::dequantize (and gguf-py) gives for finite values: the products
// d * q are exact and "+ m" is rounded once, in the same order. (On the AVX2
// path a NaN scale or F16 value may come out with another NaN payload: F16C
// quiets signalling NaNs.) Throws Error for a SIMD KernelPath on a CPU or
// build without it.
void block_dequantize(BlockFormat format, const uint8_t* blocks, int64_t n_blocks, float* out,
                      KernelPath path = best_kernel_path());

// sums[b] = x[32b] + ... + x[32b + 31], for b < cols / 32.
void block_sums(const float* x, int64_t cols, float* sums);

}  // namespace neuronlens::cpu

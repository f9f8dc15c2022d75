// Matrix-vector products straight from GGUF quantised blocks, with float32
// activations: the generation step's products, where reading the weights
// from memory is the cost, so reading 0.56-1.06 bytes per weight instead of
// float32's 4 is the speed-up. Each weight is the value dequantisation gives
// (d * q + m with the block's fp16 scale d and offset m, widened exactly);
// the sum is grouped per block,
//   y[r] = sum_b ( d_b * sum_i q_bi x_bi  +  m_b * sum_i x_bi ),
// which differs from a float32 dot product of the dequantised row only in
// rounding order. x is not quantised.
//
// Block layouts (as in src/io/dequantize.cpp; 32 values, packed back to back):
//   Q4_0  18 B: half d; uint8 qs[16]   x[k] = d*(lo4(qs[k])-8), x[k+16] = d*(hi4(qs[k])-8)
//   Q4_1  20 B: half d; half m; qs[16] x[k] = d*lo4(qs[k]) + m,  x[k+16] = d*hi4(qs[k]) + m
//   Q8_0  34 B: half d; int8 qs[32]    x[i] = d*qs[i]
#pragma once

#include <cstdint>

namespace neuronlens::cpu {

enum class BlockFormat { Q4_0, Q4_1, Q8_0 };

// Whether this CPU runs the kernels (x86-64 with AVX2, FMA and F16C).
bool have_block_matvec();

// y[r] = W[r, :] · x for rows [first_row, last_row) of W, stored as `format`
// blocks, row r starting at w + r * row_bytes; `cols` is a multiple of 32.
// `block_sums` [cols / 32] holds the sums of x over each block of 32 (read for
// Q4_0 and Q4_1; see block_sums()). Requires have_block_matvec().
void block_matvec(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t first_row,
                  int64_t last_row, const float* x, const float* block_sums, float* y);

// The float32 values of `n_blocks` blocks, bit for bit what
// neuronlens::dequantize (and gguf-py) gives for finite scales: the products
// d * q are exact and "+ m" is rounded once, in the same order. (A NaN scale
// may come out with another NaN payload: F16C quiets signalling NaNs.)
// Requires have_block_matvec().
void block_dequantize(BlockFormat format, const uint8_t* blocks, int64_t n_blocks, float* out);

// sums[b] = x[32b] + ... + x[32b + 31], for b < cols / 32.
void block_sums(const float* x, int64_t cols, float* sums);

}  // namespace neuronlens::cpu

// Products with GGUF's K-quant weights (Q2_K, Q3_K, Q4_K, Q5_K, Q6_K) in
// 8-bit integer arithmetic, the way llama.cpp computes them: the activations
// are quantised to 8 bits 256 at a time (Q8_K: one float scale per 256, so the
// integer sums of a whole super-block are added before any float is touched),
// and every weight super-block is first brought to one common form,
//
//   w[i] = d * scale[i / 16] * q[i]  -  dmin * min[i / 16],   q[i] in [0, 63],
//
// so one integer kernel serves all five types. With x[i] ~ dx * qx[i]:
//
//   sum_i w[i] x[i] = dx * ( d * sum_s scale[s] * sum_{i in s} q[i] qx[i]
//                            - dmin * sum_s min[s] * sum_{i in s} qx[i] ).
//
// The integer sums are exact; the result equals the float64 dot product of
// the dequantised weights with the *quantised* activations up to float32
// rounding. Against the float activations it differs by at most
// dx / 2 * sum_i |w[i]| per super-block (the activation's rounding): that is
// the price of the speed, and the same price llama.cpp pays.
//
// The common form of each type (layouts as in src/io/dequantize.cpp):
//   Q2_K  84 B: q 2-bit, scale = sc & 15, min = sc >> 4 (16 sub-blocks of 16)
//   Q3_K 110 B: q = low 2 bits | hmask bit << 2, scale = sc6 - 32, min = 4 * scale, dmin = d
//   Q4_K 144 B: q 4-bit, scale / min the 6-bit pairs of 8 sub-blocks of 32 (each given twice)
//   Q5_K 176 B: q = 4 bits | qh bit << 4, scales as Q4_K
//   Q6_K 210 B: q 6-bit (0..63), scale = int8 sc, min = 32 * scale, dmin = d
#pragma once

#include <cstdint>
#include <optional>

#include "backends/cpu/kernel_path.h"
#include "neuronlens/dtype.h"

namespace neuronlens::cpu {

inline constexpr int64_t kSuperBlock = 256;

enum class KFormat { Q2_K, Q3_K, Q4_K, Q5_K, Q6_K };

// The format of a tensor type, or nullopt for a type that is not a K-quant.
std::optional<KFormat> kformat_of(DType type);

// Bytes of one super-block of `format` in the file.
int64_t kformat_block_bytes(KFormat format);

// 256 activations as 8-bit integers: x[i] ~ d * q[i], |q[i]| <= 127;
// sums[s] = q[16 s] + ... + q[16 s + 15].
struct Q8KBlock {
  float d;
  int8_t q[kSuperBlock];
  int16_t sums[16];
};

// One weight super-block in the common form above.
struct KUnpacked {
  float d, dmin;
  int16_t scale[16];
  int16_t min[16];
  uint8_t q[kSuperBlock];
};

// Quantises x [cols] (cols a multiple of 256) into cols / 256 blocks:
// d = max |x| / 127, q = round(x * 127 / max |x|), rounded as llama.cpp rounds
// them (d = 1 / (127 / max |x|)), so both see the same 8-bit activations.
void quantize_q8k(const float* x, int64_t cols, Q8KBlock* out, KernelPath path = best_kernel_path());

// Unpacks `n_blocks` consecutive super-blocks of `format` at `blocks`.
void unpack_kblocks(KFormat format, const uint8_t* blocks, int64_t n_blocks, KUnpacked* out,
                    KernelPath path = best_kernel_path());

// Rows [first_row, last_row) of W, stored as `format` super-blocks (row r at
// w + r * row_bytes, cols = blocks * 256), times `tokens` rows of x as Q8_K
// blocks [tokens, blocks]: y[t * ldy + r]. Q4_K and Q6_K, the types of most
// downloaded files, have AVX2 and AVX-512 kernels that read the blocks
// directly; the others are unpacked a tile of rows at a time and go through
// kquant_product. The Avx512Vnni path gives the Avx2 path's floats bit for
// bit (the same integer lanes, the same float operations in the same order).
void kquant_matmul(KFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                   int64_t last_row, const Q8KBlock* x, int64_t tokens, float* y, int64_t ldy,
                   KernelPath path = best_kernel_path());

// y[t * ldy + r] = W[r, :] . x[t, :] for rows r < rows and tokens t < tokens,
// with W given as `rows` rows of `blocks` unpacked super-blocks each
// (row r at w + r * blocks) and x as `tokens` rows of `blocks` Q8_K blocks.
void kquant_product(const KUnpacked* w, int64_t rows, int64_t blocks, const Q8KBlock* x, int64_t tokens, float* y,
                    int64_t ldy, KernelPath path = best_kernel_path());

}  // namespace neuronlens::cpu

// Internal to backends/cpu: the per-path halves of kquant.h. The dispatch in
// kquant.cpp picks one; tests reach each through KernelPath.
#pragma once

#include <algorithm>
#include <cstdint>
#include <cstring>

#include "backends/cpu/kquant.h"

namespace neuronlens::cpu {

// Q4_K / Q5_K: the 12 bytes of 6-bit scale and min pairs of 8 sub-blocks of
// 32, as out[0..7] = scales and out[8..15] = mins. Byte j < 4 holds scale j in
// its low 6 bits and the top 2 bits of scale j + 4; byte 4 + j likewise for
// the mins; byte 8 + j the low 4 bits of scale j + 4 and of min j + 4. Done on
// four bytes at once.
inline void k4_scales_and_mins(const uint8_t* packed, uint8_t out[16]) {
  uint32_t w[3];
  std::memcpy(w, packed, sizeof w);
  const uint32_t low6 = 0x3F3F3F3F, low4 = 0x0F0F0F0F, low2 = 0x03030303;
  const uint32_t words[4] = {
      w[0] & low6,                                        // scales 0-3
      (w[2] & low4) | (((w[0] >> 6) & low2) << 4),        // scales 4-7
      w[1] & low6,                                        // mins 0-3
      ((w[2] >> 4) & low4) | (((w[1] >> 6) & low2) << 4),  // mins 4-7
  };
  std::memcpy(out, words, sizeof words);
}

// One row of unpacked weights times up to 4 tokens: out[t * ldy] = W_row . x_t
// for the row's `blocks` blocks and x[t]'s, t < the count the kernel is for.
using UnpackedRowKernel = void (*)(const KUnpacked* w, int64_t blocks, const Q8KBlock* const* x, float* out,
                                   int64_t ldy);

// kquant_product for a SIMD path, given its row kernels for 1 to 4 tokens
// (row_for[count - 1]): tokens in groups of 4 against each row, so that a
// row's unpacked blocks are read once per group, the group's activations in
// L1.
inline void product_by_token_groups(const UnpackedRowKernel (&row_for)[4], const KUnpacked* w, int64_t rows,
                                    int64_t blocks, const Q8KBlock* x, int64_t tokens, float* y, int64_t ldy) {
  constexpr int64_t kGroup = 4;
  for (int64_t t0 = 0; t0 < tokens; t0 += kGroup) {
    const int64_t group = std::min(kGroup, tokens - t0);
    const Q8KBlock* xs[kGroup];
    for (int64_t t = 0; t < group; ++t) xs[t] = x + (t0 + t) * blocks;
    for (int64_t r = 0; r < rows; ++r) row_for[group - 1](w + r * blocks, blocks, xs, y + t0 * ldy + r, ldy);
  }
}

namespace portable {
// The scale and min fields of one super-block (all of KUnpacked but q).
void unpack_kscales(KFormat format, const uint8_t* block, KUnpacked& out);
}  // namespace portable

#if defined(__x86_64__)
namespace avx2 {
void quantize_q8k(const float* x, int64_t cols, Q8KBlock* out);
void unpack_kblocks(KFormat format, const uint8_t* blocks, int64_t n_blocks, KUnpacked* out);
void kquant_product(const KUnpacked* w, int64_t rows, int64_t blocks, const Q8KBlock* x, int64_t tokens, float* y,
                    int64_t ldy);
// kquant_matmul straight from the blocks, for the formats that have such a
// kernel; false (nothing done) for the others.
bool kquant_matmul_direct(KFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                          int64_t last_row, const Q8KBlock* x, int64_t tokens, float* y, int64_t ldy);
}  // namespace avx2

// The products only: Avx512Vnni unpacks and quantises with the AVX2 code.
// Bit for bit the AVX2 results (kquant_avx512.cpp says why).
namespace avx512 {
void kquant_product(const KUnpacked* w, int64_t rows, int64_t blocks, const Q8KBlock* x, int64_t tokens, float* y,
                    int64_t ldy);
bool kquant_matmul_direct(KFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                          int64_t last_row, const Q8KBlock* x, int64_t tokens, float* y, int64_t ldy);
}  // namespace avx512
#endif

}  // namespace neuronlens::cpu

// block_matvec.h in plain C++, for every CPU. The same terms in the same
// order as block_matvec_avx2.cpp, its eight lanes written out as loops over
// l < 8 so that the compiler can vectorise them for the baseline it targets
// (SSE2, NEON); only the fused multiply-adds differ.
#include <cstring>

#include "backends/cpu/block_matvec_kernels.h"
#include "backends/cpu/block_values.h"
#include "io/half.h"

namespace neuronlens::cpu::portable {
namespace {

float half_at(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return fp16_to_fp32(bits);
}

// The 32 q of a block (block_matvec.h's table) as floats, in value order
// (exact: the integers have at most 8 bits, and widening fp16/bf16 is exact).
template <BlockFormat kFormat>
void block_floats(const uint8_t* block, float q[32]) {
  if constexpr (is_plain(kFormat)) {
    for (int i = 0; i < 32; ++i) {
      uint16_t bits;
      std::memcpy(&bits, block + 2 * i, sizeof bits);
      q[i] = kFormat == BlockFormat::F16 ? fp16_to_fp32(bits) : bf16_to_fp32(bits);
    }
  } else {
    int integers[32];
    block_integers<kFormat>(block, integers);
    for (int i = 0; i < 32; ++i) q[i] = static_cast<float>(integers[i]);
  }
}

template <BlockFormat kFormat>
void matvec_rows(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first, int64_t last, const float* x,
                 const float* block_sums, float* y) {
  constexpr int64_t kBlockBytes = block_bytes(kFormat);
  for (int64_t r = first; r < last; ++r) {
    const uint8_t* block = w + r * row_bytes;
    float acc[8] = {};
    float offset_sum = 0;
    for (int64_t b = 0; b < blocks; ++b, block += kBlockBytes) {
      float q[32];
      block_floats<kFormat>(block, q);
      const float* xb = x + b * 32;
      float dot[8];
      for (int l = 0; l < 8; ++l) {
        dot[l] = (q[l] * xb[l] + q[l + 8] * xb[l + 8]) + (q[l + 16] * xb[l + 16] + q[l + 24] * xb[l + 24]);
      }
      if constexpr (is_plain(kFormat)) {
        for (int l = 0; l < 8; ++l) acc[l] += dot[l];
      } else {
        const float d = half_at(block);
        for (int l = 0; l < 8; ++l) acc[l] += d * dot[l];
      }
      if constexpr (has_offset(kFormat)) offset_sum += half_at(block + 2) * block_sums[b];
    }
    y[r] = horizontal_sum(acc) + offset_sum;
  }
}

// d * q (+ m), rounded as dequantisation rounds.
template <BlockFormat kFormat>
void dequantize_blocks(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += block_bytes(kFormat), out += 32) {
    float q[32];
    block_floats<kFormat>(block, q);
    if constexpr (is_plain(kFormat)) {
      std::memcpy(out, q, sizeof q);
    } else {
      const float d = half_at(block);
      const float m = has_offset(kFormat) ? half_at(block + 2) : 0.0f;
      for (int i = 0; i < 32; ++i) out[i] = has_offset(kFormat) ? q[i] * d + m : q[i] * d;
    }
  }
}

}  // namespace

void block_matvec(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t first_row,
                  int64_t last_row, const float* x, const float* block_sums, float* y) {
  with_format(format, [&](auto f) {
    matvec_rows<decltype(f)::value>(w, row_bytes, cols / 32, first_row, last_row, x, block_sums, y);
  });
}

void block_dequantize(BlockFormat format, const uint8_t* blocks, int64_t n_blocks, float* out) {
  with_format(format, [&](auto f) { dequantize_blocks<decltype(f)::value>(blocks, n_blocks, out); });
}

}  // namespace neuronlens::cpu::portable

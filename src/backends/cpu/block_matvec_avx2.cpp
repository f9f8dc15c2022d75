// block_matvec.h with AVX2, FMA and F16C. The functions get those by target
// attribute, not by -march flags, so the binary still runs on any x86-64;
// block_matvec.cpp calls in only where can_run(KernelPath::Avx2).
#include "backends/cpu/block_matvec_kernels.h"

#if defined(__x86_64__)

#include "backends/cpu/block_values_avx2.h"

namespace neuronlens::cpu::avx2 {
namespace {

// The 32 q of a block as floats, values 8j .. 8j + 7 in q[j] (exact: the
// integers have at most 8 bits, and widening fp16/bf16 is exact).
template <BlockFormat kFormat>
NEURONLENS_BLOCK_TARGET inline void block_floats(const uint8_t* block, __m256 q[4]) {
  if constexpr (kFormat == BlockFormat::F16) {
    for (int j = 0; j < 4; ++j) {
      q[j] = _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * j)));
    }
  } else if constexpr (kFormat == BlockFormat::BF16) {
    for (int j = 0; j < 4; ++j) {
      const __m256i halves = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 16 * j)));
      q[j] = _mm256_castsi256_ps(_mm256_slli_epi32(halves, 16));
    }
  } else {
    const __m256i bytes = block_integers<kFormat>(block);
    const __m128i lo = _mm256_castsi256_si128(bytes), hi = _mm256_extracti128_si256(bytes, 1);
    q[0] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(lo));
    q[1] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)));
    q[2] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(hi));
    q[3] = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)));
  }
}

// sum_i q_i x_i over one block, in eight lanes.
NEURONLENS_BLOCK_TARGET inline __m256 block_dot(const __m256 q[4], const float* x) {
  const __m256 a = _mm256_fmadd_ps(q[1], _mm256_loadu_ps(x + 8), _mm256_mul_ps(q[0], _mm256_loadu_ps(x)));
  const __m256 b = _mm256_fmadd_ps(q[3], _mm256_loadu_ps(x + 24), _mm256_mul_ps(q[2], _mm256_loadu_ps(x + 16)));
  return _mm256_add_ps(a, b);
}

template <BlockFormat kFormat>
NEURONLENS_BLOCK_TARGET void matvec_rows(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first,
                                         int64_t last, const float* x, const float* block_sums, float* y) {
  constexpr int64_t kBlockBytes = block_bytes(kFormat);
  for (int64_t r = first; r < last; ++r) {
    const uint8_t* block = w + r * row_bytes;
    __m256 acc = _mm256_setzero_ps();
    float offset_sum = 0;
    for (int64_t b = 0; b < blocks; ++b, block += kBlockBytes) {
      __m256 q[4];
      block_floats<kFormat>(block, q);
      const __m256 dot = block_dot(q, x + b * 32);
      if constexpr (is_plain(kFormat)) {
        acc = _mm256_add_ps(acc, dot);
      } else {
        acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(block)), dot, acc);
      }
      if constexpr (has_offset(kFormat)) offset_sum += half_at(block + 2) * block_sums[b];
    }
    y[r] = horizontal_sum(acc) + offset_sum;
  }
}

// d * q (+ m), rounded as dequantisation rounds.
template <BlockFormat kFormat>
NEURONLENS_BLOCK_TARGET void dequantize_blocks(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += block_bytes(kFormat), out += 32) {
    __m256 q[4];
    block_floats<kFormat>(block, q);
    for (int j = 0; j < 4; ++j) {
      __m256 v = q[j];
      if constexpr (!is_plain(kFormat)) v = _mm256_mul_ps(v, _mm256_set1_ps(half_at(block)));
      if constexpr (has_offset(kFormat)) v = _mm256_add_ps(v, _mm256_set1_ps(half_at(block + 2)));
      _mm256_storeu_ps(out + 8 * j, v);
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

}  // namespace neuronlens::cpu::avx2

#endif  // __x86_64__

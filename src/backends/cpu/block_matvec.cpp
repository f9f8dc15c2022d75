#include "backends/cpu/block_matvec.h"

#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace neuronlens::cpu {

void block_sums(const float* x, int64_t cols, float* sums) {
  for (int64_t b = 0; b < cols / 32; ++b) {
    float s = 0;
    for (int64_t i = 0; i < 32; ++i) s += x[b * 32 + i];
    sums[b] = s;
  }
}

#if defined(__x86_64__)
namespace {

#define NEURONLENS_BLOCK_TARGET __attribute__((target("avx2,fma,f16c")))

NEURONLENS_BLOCK_TARGET inline float half_at(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return _cvtsh_ss(bits);
}

NEURONLENS_BLOCK_TARGET inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

// sum_i q_i x_i over one block of 32, eight lanes, for the values q0..q3
// (8 each, as int32).
NEURONLENS_BLOCK_TARGET inline __m256 block_dot(__m256i q0, __m256i q1, __m256i q2, __m256i q3, const float* x) {
  const __m256 a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q1), _mm256_loadu_ps(x + 8),
                                   _mm256_mul_ps(_mm256_cvtepi32_ps(q0), _mm256_loadu_ps(x)));
  const __m256 b = _mm256_fmadd_ps(_mm256_cvtepi32_ps(q3), _mm256_loadu_ps(x + 24),
                                   _mm256_mul_ps(_mm256_cvtepi32_ps(q2), _mm256_loadu_ps(x + 16)));
  return _mm256_add_ps(a, b);
}

// For 16 bytes of 4-bit values: low nibbles are values 0-15, high nibbles 16-31.
NEURONLENS_BLOCK_TARGET inline __m256 nibble_dot(const uint8_t* qs, const float* x) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0F);
  const __m128i lo = _mm_and_si128(packed, mask);
  const __m128i hi = _mm_and_si128(_mm_srli_epi16(packed, 4), mask);
  return block_dot(_mm256_cvtepu8_epi32(lo), _mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)), _mm256_cvtepu8_epi32(hi),
                   _mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)), x);
}

// For 32 signed bytes.
NEURONLENS_BLOCK_TARGET inline __m256 int8_dot(const uint8_t* qs, const float* x) {
  const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs));
  const __m128i lo = _mm256_castsi256_si128(packed), hi = _mm256_extracti128_si256(packed, 1);
  return block_dot(_mm256_cvtepi8_epi32(lo), _mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)), _mm256_cvtepi8_epi32(hi),
                   _mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)), x);
}

// Q4_0 is Q4_1 with m = -8 d.
template <bool kHasMin>
NEURONLENS_BLOCK_TARGET void nibble_rows(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first,
                                         int64_t last, const float* x, const float* block_sums, float* y) {
  constexpr int64_t kBlockBytes = kHasMin ? 20 : 18;
  constexpr int64_t kQsOffset = kHasMin ? 4 : 2;
  for (int64_t r = first; r < last; ++r) {
    const uint8_t* block = w + r * row_bytes;
    __m256 acc = _mm256_setzero_ps();
    float offset_sum = 0;
    for (int64_t b = 0; b < blocks; ++b, block += kBlockBytes) {
      const float d = half_at(block);
      const float m = kHasMin ? half_at(block + 2) : -8.0f * d;
      acc = _mm256_fmadd_ps(_mm256_set1_ps(d), nibble_dot(block + kQsOffset, x + b * 32), acc);
      offset_sum += m * block_sums[b];
    }
    y[r] = horizontal_sum(acc) + offset_sum;
  }
}

NEURONLENS_BLOCK_TARGET void int8_rows(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first,
                                       int64_t last, const float* x, float* y) {
  constexpr int64_t kBlockBytes = 34;
  for (int64_t r = first; r < last; ++r) {
    const uint8_t* block = w + r * row_bytes;
    __m256 acc = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b, block += kBlockBytes) {
      acc = _mm256_fmadd_ps(_mm256_set1_ps(half_at(block)), int8_dot(block + 2, x + b * 32), acc);
    }
    y[r] = horizontal_sum(acc);
  }
}

// The 32 values of a block from its values q0..q3 (8 each, as int32):
// d * q (+ m), rounded as dequantisation rounds.
template <bool kHasMin>
NEURONLENS_BLOCK_TARGET inline void store_block(__m256i q0, __m256i q1, __m256i q2, __m256i q3, float d, float m,
                                                float* out) {
  const __m256 vd = _mm256_set1_ps(d), vm = _mm256_set1_ps(m);
  const __m256i q[4] = {q0, q1, q2, q3};
  for (int i = 0; i < 4; ++i) {
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(q[i]), vd);
    if constexpr (kHasMin) v = _mm256_add_ps(v, vm);
    _mm256_storeu_ps(out + 8 * i, v);
  }
}

template <BlockFormat kFormat>
NEURONLENS_BLOCK_TARGET void dequantize_blocks(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, out += 32) {
    if constexpr (kFormat == BlockFormat::Q8_0) {
      const __m256i packed = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
      const __m128i lo = _mm256_castsi256_si128(packed), hi = _mm256_extracti128_si256(packed, 1);
      store_block<false>(_mm256_cvtepi8_epi32(lo), _mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)),
                         _mm256_cvtepi8_epi32(hi), _mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)), half_at(block), 0.0f,
                         out);
      block += 34;
    } else {
      constexpr bool kHasMin = kFormat == BlockFormat::Q4_1;
      const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + (kHasMin ? 4 : 2)));
      const __m128i mask = _mm_set1_epi8(0x0F);
      // Q4_0 stores q - 8, signed.
      const __m128i offset = _mm_set1_epi8(kHasMin ? 0 : 8);
      const __m128i lo = _mm_sub_epi8(_mm_and_si128(packed, mask), offset);
      const __m128i hi = _mm_sub_epi8(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), offset);
      store_block<kHasMin>(_mm256_cvtepi8_epi32(lo), _mm256_cvtepi8_epi32(_mm_srli_si128(lo, 8)),
                           _mm256_cvtepi8_epi32(hi), _mm256_cvtepi8_epi32(_mm_srli_si128(hi, 8)), half_at(block),
                           kHasMin ? half_at(block + 2) : 0.0f, out);
      block += kHasMin ? 20 : 18;
    }
  }
}

}  // namespace

void block_dequantize(BlockFormat format, const uint8_t* blocks, int64_t n_blocks, float* out) {
  switch (format) {
    case BlockFormat::Q4_0: return dequantize_blocks<BlockFormat::Q4_0>(blocks, n_blocks, out);
    case BlockFormat::Q4_1: return dequantize_blocks<BlockFormat::Q4_1>(blocks, n_blocks, out);
    case BlockFormat::Q8_0: return dequantize_blocks<BlockFormat::Q8_0>(blocks, n_blocks, out);
  }
}

bool have_block_matvec() {
  static const bool have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
                           __builtin_cpu_supports("f16c");
  return have;
}

void block_matvec(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t first_row,
                  int64_t last_row, const float* x, const float* block_sums, float* y) {
  const int64_t blocks = cols / 32;
  switch (format) {
    case BlockFormat::Q4_0: return nibble_rows<false>(w, row_bytes, blocks, first_row, last_row, x, block_sums, y);
    case BlockFormat::Q4_1: return nibble_rows<true>(w, row_bytes, blocks, first_row, last_row, x, block_sums, y);
    case BlockFormat::Q8_0: return int8_rows(w, row_bytes, blocks, first_row, last_row, x, y);
  }
}

#else

bool have_block_matvec() { return false; }

// Never called: have_block_matvec() is false.
void block_matvec(BlockFormat, const uint8_t*, int64_t, int64_t, int64_t, int64_t, const float*, const float*,
                  float*) {}
void block_dequantize(BlockFormat, const uint8_t*, int64_t, float*) {}

#endif

}  // namespace neuronlens::cpu

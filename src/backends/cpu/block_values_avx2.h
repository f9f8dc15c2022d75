// The integers of one Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0 block (the layouts in
// block_matvec.h) in an AVX2 register, value i in byte i: shared by the
// float-activation kernels (block_matvec_avx2.cpp) and the 8-bit-activation
// ones (block_q8_avx2.cpp). Each function carries the target attribute, so
// including this file needs no -mavx2; call only where the CPU has AVX2.
#pragma once

#if defined(__x86_64__)
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "backends/cpu/block_matvec_kernels.h"

#define NEURONLENS_BLOCK_TARGET __attribute__((target("avx2,fma,f16c")))

namespace neuronlens::cpu::avx2 {

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

// 16 bytes of 4-bit values as 32 bytes: the low nibbles (values 0-15), then
// the high ones (values 16-31).
NEURONLENS_BLOCK_TARGET inline __m256i nibbles(const uint8_t* qs) {
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
  const __m128i mask = _mm_set1_epi8(0x0F);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(packed, 4), mask), _mm_and_si128(packed, mask));
}

// Byte i is 16 where bit i of the 32 bits at qh is set, else 0: the 5th bits
// of Q5_0/Q5_1.
NEURONLENS_BLOCK_TARGET inline __m256i fifth_bits(const uint8_t* qh) {
  uint32_t bits;
  std::memcpy(&bits, qh, sizeof bits);
  // Byte i gets byte i / 8 of qh (the shuffle works within 128-bit halves,
  // each of which holds all four), then keeps its bit i % 8.
  const __m256i spread = _mm256_shuffle_epi8(_mm256_set1_epi32(static_cast<int>(bits)),
                                             _mm256_set_epi64x(0x0303030303030303, 0x0202020202020202,
                                                               0x0101010101010101, 0));
  const __m256i bit = _mm256_set1_epi64x(static_cast<int64_t>(0x8040201008040201ULL));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(spread, bit), bit), _mm256_set1_epi8(16));
}

// The stored unsigned values of a 4- or 5-bit block, before Q4_0's - 8 and
// Q5_0's - 16 (portable::value_bias).
template <BlockFormat kFormat>
NEURONLENS_BLOCK_TARGET inline __m256i unsigned_values(const uint8_t* block) {
  if constexpr (kFormat == BlockFormat::Q4_0) {
    return nibbles(block + 2);
  } else if constexpr (kFormat == BlockFormat::Q4_1) {
    return nibbles(block + 4);
  } else if constexpr (kFormat == BlockFormat::Q5_0) {
    return _mm256_or_si256(nibbles(block + 6), fifth_bits(block + 2));
  } else {
    static_assert(kFormat == BlockFormat::Q5_1);
    return _mm256_or_si256(nibbles(block + 8), fifth_bits(block + 4));
  }
}

// The 32 integers q of a block (block_matvec.h's table) as signed bytes.
template <BlockFormat kFormat>
NEURONLENS_BLOCK_TARGET inline __m256i block_integers(const uint8_t* block) {
  if constexpr (kFormat == BlockFormat::Q4_0) {
    return _mm256_sub_epi8(unsigned_values<kFormat>(block), _mm256_set1_epi8(8));
  } else if constexpr (kFormat == BlockFormat::Q5_0) {
    return _mm256_sub_epi8(unsigned_values<kFormat>(block), _mm256_set1_epi8(16));
  } else if constexpr (kFormat == BlockFormat::Q8_0) {
    return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2));
  } else {
    return unsigned_values<kFormat>(block);
  }
}

}  // namespace neuronlens::cpu::avx2

#endif  // __x86_64__

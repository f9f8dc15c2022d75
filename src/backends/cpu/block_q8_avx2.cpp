// block_q8.h with AVX2, FMA and F16C (by target attribute: the binary still
// runs on any x86-64; block_q8.cpp calls in only where the CPU has them).
#include "backends/cpu/block_q8.h"

#if defined(__x86_64__)

#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/block_values_avx2.h"

namespace neuronlens::cpu::avx2 {
namespace {

NEURONLENS_BLOCK_TARGET inline int32_t horizontal_sum_i32(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

NEURONLENS_BLOCK_TARGET inline float rounded_to_half(float value) {
  return _cvtsh_ss(_cvtss_sh(value, _MM_FROUND_TO_NEAREST_INT));
}

// Rows [first, last) against T tokens. The weights' integers go into
// vpmaddubsw as its unsigned operand: Q4_1 and Q5_1's are unsigned already;
// for the signed formats the magnitudes go there and the activations take
// the weights' signs, as in llama.cpp. Then vpmaddwd by 1 gives eight lanes,
// lane l = sum of the products of values 4l .. 4l + 3.
template <BlockFormat kFormat, int T>
NEURONLENS_BLOCK_TARGET void rows_times_tokens(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first,
                                               int64_t last, const Q8Block* const* x, float* y, int64_t ldy) {
  constexpr int64_t kBlockBytes = block_bytes(kFormat);
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t r = first; r < last; ++r) {
    const uint8_t* block = w + r * row_bytes;
    __m256 acc[T];
    float offset[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps(), offset[t] = 0;
    for (int64_t b = 0; b < blocks; ++b, block += kBlockBytes) {
      const float d = half_at(block);
      __m256i magnitudes, signs;
      if constexpr (has_offset(kFormat)) {
        magnitudes = unsigned_values<kFormat>(block);
        signs = magnitudes;  // unused
      } else {
        signs = block_integers<kFormat>(block);
        magnitudes = _mm256_sign_epi8(signs, signs);
      }
      for (int t = 0; t < T; ++t) {
        const Q8Block& xb = x[t][b];
        __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.q));
        if constexpr (!has_offset(kFormat)) qx = _mm256_sign_epi8(qx, signs);
        const __m256i lanes = _mm256_madd_epi16(_mm256_maddubs_epi16(magnitudes, qx), ones);
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(d * xb.d), _mm256_cvtepi32_ps(lanes), acc[t]);
        if constexpr (has_offset(kFormat)) offset[t] += half_at(block + 2) * xb.s;
      }
    }
    for (int t = 0; t < T; ++t) y[t * ldy + r] = horizontal_sum(acc[t]) + offset[t];
  }
}

template <BlockFormat kFormat>
NEURONLENS_BLOCK_TARGET void matmul(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                                    int64_t last_row, const Q8Block* x, int64_t tokens, float* y, int64_t ldy) {
  // Tokens in groups of 4 against rows in runs of 16: a run's blocks are
  // read from memory once and stay in L1 for the next groups.
  constexpr int64_t kGroup = 4, kRun = 16;
  for (int64_t r = first_row; r < last_row; r += kRun) {
    const int64_t run_end = std::min(last_row, r + kRun);
    for (int64_t t0 = 0; t0 < tokens; t0 += kGroup) {
      const int64_t group = std::min(kGroup, tokens - t0);
      const Q8Block* xs[kGroup];
      for (int64_t t = 0; t < group; ++t) xs[t] = x + (t0 + t) * blocks;
      float* out = y + t0 * ldy;
      switch (group) {
        case 4: rows_times_tokens<kFormat, 4>(w, row_bytes, blocks, r, run_end, xs, out, ldy); break;
        case 3: rows_times_tokens<kFormat, 3>(w, row_bytes, blocks, r, run_end, xs, out, ldy); break;
        case 2: rows_times_tokens<kFormat, 2>(w, row_bytes, blocks, r, run_end, xs, out, ldy); break;
        default: rows_times_tokens<kFormat, 1>(w, row_bytes, blocks, r, run_end, xs, out, ldy); break;
      }
    }
  }
}

}  // namespace

NEURONLENS_BLOCK_TARGET void quantize_q8_blocks(const float* x, int64_t cols, Q8Block* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < cols / 32; ++b, x += 32) {
    Q8Block& o = out[b];
    __m256 v[4];
    __m256 amax = _mm256_setzero_ps();
    for (int k = 0; k < 4; ++k) {
      v[k] = _mm256_loadu_ps(x + 8 * k);
      amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, v[k]));
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float max = _mm_cvtss_f32(m);
    // vmaxps drops a NaN in its second operand: look at the values themselves.
    bool finite = std::isfinite(max);
    for (int k = 0; k < 4 && finite; ++k) finite = _mm256_movemask_ps(_mm256_cmp_ps(v[k], v[k], _CMP_UNORD_Q)) == 0;
    if (!finite) {
      // An overflowed activation: the product must not look finite.
      o.d = o.s = std::numeric_limits<float>::quiet_NaN();
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q), _mm256_setzero_si256());
      continue;
    }
    const float d = max / 127.0f;
    const __m256 inverse = _mm256_set1_ps(max != 0 ? 127.0f / max : 0.0f);
    __m256i q[4];
    for (int k = 0; k < 4; ++k) {
      q[k] = _mm256_cvtps_epi32(_mm256_round_ps(_mm256_mul_ps(v[k], inverse), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    const int32_t sum = horizontal_sum_i32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]), _mm256_add_epi32(q[2], q[3])));
    o.d = rounded_to_half(d);
    o.s = rounded_to_half(d * static_cast<float>(sum));
    const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(q[0], q[1]), _mm256_packs_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(o.q), _mm256_permutevar8x32_epi32(packed, order));
  }
}

void block_q8_matmul(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                     int64_t last_row, const Q8Block* x, int64_t tokens, float* y, int64_t ldy) {
  with_format(format, [&](auto f) {
    if constexpr (has_q8_kernel(decltype(f)::value)) {
      matmul<decltype(f)::value>(w, row_bytes, blocks, first_row, last_row, x, tokens, y, ldy);
    }
  });
}

}  // namespace neuronlens::cpu::avx2

#endif  // __x86_64__

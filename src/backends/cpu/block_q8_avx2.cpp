// block_q8.h with AVX2, FMA and F16C (by target attribute: the binary still
// runs on any x86-64; block_q8.cpp calls in only where the CPU has them).
#include "backends/cpu/block_q8.h"

#if defined(__x86_64__)

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

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

// One block as the token loop reads it. The weights' integers go into
// vpmaddubsw as its unsigned operand: Q4_1 and Q5_1's are unsigned already;
// for the signed formats the magnitudes go there and the activations take
// the weights' signs, as in llama.cpp. Decoded from the file's bytes on the
// fly (one group of tokens) or once per run of rows into a buffer that every
// group of a prompt reads (matmul). alignas: GCC gives __m256i members only
// 16-byte alignment outside an -mavx2 build.
struct alignas(32) DecodedBlock {
  __m256i magnitudes;  // [32] the values (offset formats) or their magnitudes
  __m256i signs;       // [32] the signed values (signed formats)
  float d, m;          // the scale, and the offset formats' minimum
};

template <BlockFormat kFormat>
NEURONLENS_BLOCK_TARGET inline DecodedBlock decode(const uint8_t* block) {
  DecodedBlock out;
  out.d = half_at(block);
  if constexpr (has_offset(kFormat)) {
    out.magnitudes = unsigned_values<kFormat>(block);
    out.signs = out.magnitudes;  // unused
    out.m = half_at(block + 2);
  } else {
    out.signs = block_integers<kFormat>(block);
    out.magnitudes = _mm256_sign_epi8(out.signs, out.signs);
    out.m = 0;
  }
  return out;
}

// Rows [first, last) against T tokens; block_at(r, b) gives row r's block b
// as a DecodedBlock. vpmaddwd by 1 after vpmaddubsw gives eight lanes, lane
// l = sum of the products of values 4l .. 4l + 3.
template <BlockFormat kFormat, int T, typename BlockAt>
NEURONLENS_BLOCK_TARGET void rows_times_tokens(BlockAt block_at, int64_t blocks, int64_t first, int64_t last,
                                               const Q8Block* const* x, float* y, int64_t ldy) {
  const __m256i ones = _mm256_set1_epi16(1);
  for (int64_t r = first; r < last; ++r) {
    __m256 acc[T];
    float offset[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps(), offset[t] = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const auto& wb = block_at(r, b);
      for (int t = 0; t < T; ++t) {
        const Q8Block& xb = x[t][b];
        __m256i qx = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(xb.q));
        if constexpr (!has_offset(kFormat)) qx = _mm256_sign_epi8(qx, wb.signs);
        const __m256i lanes = _mm256_madd_epi16(_mm256_maddubs_epi16(wb.magnitudes, qx), ones);
        acc[t] = _mm256_fmadd_ps(_mm256_set1_ps(wb.d * xb.d), _mm256_cvtepi32_ps(lanes), acc[t]);
        if constexpr (has_offset(kFormat)) offset[t] += wb.m * xb.s;
      }
    }
    for (int t = 0; t < T; ++t) y[t * ldy + r] = horizontal_sum(acc[t]) + offset[t];
  }
}

// Rows [first, last) times T tokens, the blocks decoded from the file as they
// are read (decoded == nullptr) or taken from decoded [last - first][blocks].
template <BlockFormat kFormat, int T>
NEURONLENS_BLOCK_TARGET void rows_times_group(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first,
                                              int64_t last, const DecodedBlock* decoded, const Q8Block* const* x,
                                              float* y, int64_t ldy) {
  if (decoded != nullptr) {
    rows_times_tokens<kFormat, T>(
        [&](int64_t r, int64_t b) -> const DecodedBlock& { return decoded[(r - first) * blocks + b]; }, blocks, first,
        last, x, y, ldy);
  } else {
    rows_times_tokens<kFormat, T>(
        [&](int64_t r, int64_t b) { return decode<kFormat>(w + r * row_bytes + b * block_bytes(kFormat)); }, blocks,
        first, last, x, y, ldy);
  }
}

template <BlockFormat kFormat>
NEURONLENS_BLOCK_TARGET void matmul(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                                    int64_t last_row, const Q8Block* x, int64_t tokens, float* y, int64_t ldy) {
  // Tokens in groups of 4 against rows in runs of 16. With more than one
  // group a run's blocks are decoded once into a buffer (in L1 or L2) that
  // every group reads: decoding a Q5_0 block costs more than a token's
  // product with it.
  constexpr int64_t kGroup = 4, kRun = 16;
  thread_local std::vector<DecodedBlock> buffer;
  for (int64_t r = first_row; r < last_row; r += kRun) {
    const int64_t run_end = std::min(last_row, r + kRun);
    const DecodedBlock* decoded = nullptr;
    if (tokens > kGroup) {
      buffer.resize(static_cast<size_t>((run_end - r) * blocks));
      for (int64_t row = r; row < run_end; ++row) {
        for (int64_t b = 0; b < blocks; ++b) {
          buffer[static_cast<size_t>((row - r) * blocks + b)] =
              decode<kFormat>(w + row * row_bytes + b * block_bytes(kFormat));
        }
      }
      decoded = buffer.data();
    }
    for (int64_t t0 = 0; t0 < tokens; t0 += kGroup) {
      const int64_t group = std::min(kGroup, tokens - t0);
      const Q8Block* xs[kGroup];
      for (int64_t t = 0; t < group; ++t) xs[t] = x + (t0 + t) * blocks;
      float* out = y + t0 * ldy;
      switch (group) {
        case 4: rows_times_group<kFormat, 4>(w, row_bytes, blocks, r, run_end, decoded, xs, out, ldy); break;
        case 3: rows_times_group<kFormat, 3>(w, row_bytes, blocks, r, run_end, decoded, xs, out, ldy); break;
        case 2: rows_times_group<kFormat, 2>(w, row_bytes, blocks, r, run_end, decoded, xs, out, ldy); break;
        default: rows_times_group<kFormat, 1>(w, row_bytes, blocks, r, run_end, decoded, xs, out, ldy); break;
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

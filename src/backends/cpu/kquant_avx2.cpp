// K-quant products on AVX2 (kquant.h): the activation quantiser, the
// unpacking of each type's values 32 at a time, and the integer product
// (vpmaddubsw: unsigned weight values times signed activations, pairwise, then
// vpmaddwd by each sub-block's scale). Compiled for every x86-64 CPU with the
// target attribute, called only where the CPU has AVX2, FMA and F16C.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "backends/cpu/kquant_impl.h"

#define NEURONLENS_AVX2 __attribute__((target("avx2,fma,f16c")))

namespace neuronlens::cpu::avx2 {
namespace {

NEURONLENS_AVX2 inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

NEURONLENS_AVX2 inline int32_t horizontal_sum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

NEURONLENS_AVX2 inline __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
NEURONLENS_AVX2 inline void store(void* p, __m256i v) { _mm256_storeu_si256(static_cast<__m256i*>(p), v); }

// Bytes of `bits` where the byte has `bit` set become `value`, others 0.
NEURONLENS_AVX2 inline __m256i where_bit(__m256i bits, int bit, int value) {
  const __m256i b = _mm256_set1_epi8(static_cast<char>(1 << bit));
  return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(bits, b), b), _mm256_set1_epi8(static_cast<char>(value)));
}

NEURONLENS_AVX2 void values_q2_k(const uint8_t* block, uint8_t* q) {
  const __m256i three = _mm256_set1_epi8(3);
  for (int half = 0; half < 2; ++half) {
    const __m256i v = load(block + 16 + 32 * half);
    // Bit pair `shift` of the 32 bytes: values 128 * half + 32 * shift + j.
    store(q + 128 * half, _mm256_and_si256(v, three));
    store(q + 128 * half + 32, _mm256_and_si256(_mm256_srli_epi16(v, 2), three));
    store(q + 128 * half + 64, _mm256_and_si256(_mm256_srli_epi16(v, 4), three));
    store(q + 128 * half + 96, _mm256_and_si256(_mm256_srli_epi16(v, 6), three));
  }
}

NEURONLENS_AVX2 void values_q3_k(const uint8_t* block, uint8_t* q) {
  const __m256i three = _mm256_set1_epi8(3);
  const __m256i hmask = load(block);
  for (int half = 0; half < 2; ++half) {
    const __m256i v = load(block + 32 + 32 * half);
    for (int shift = 0; shift < 4; ++shift) {
      const __m256i low = _mm256_and_si256(_mm256_srli_epi16(v, 2 * shift), three);
      store(q + 128 * half + 32 * shift, _mm256_or_si256(low, where_bit(hmask, 4 * half + shift, 4)));
    }
  }
}

NEURONLENS_AVX2 void values_q4_k(const uint8_t* block, uint8_t* q) {
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  for (int j = 0; j < 4; ++j) {
    const __m256i v = load(block + 16 + 32 * j);
    store(q + 64 * j, _mm256_and_si256(v, nibble));
    store(q + 64 * j + 32, _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble));
  }
}

NEURONLENS_AVX2 void values_q5_k(const uint8_t* block, uint8_t* q) {
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  const __m256i qh = load(block + 16);
  for (int j = 0; j < 4; ++j) {
    const __m256i v = load(block + 48 + 32 * j);
    store(q + 64 * j, _mm256_or_si256(_mm256_and_si256(v, nibble), where_bit(qh, 2 * j, 16)));
    store(q + 64 * j + 32,
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(v, 4), nibble), where_bit(qh, 2 * j + 1, 16)));
  }
}

NEURONLENS_AVX2 void values_q6_k(const uint8_t* block, uint8_t* q) {
  const __m256i nibble = _mm256_set1_epi8(0x0F), pair = _mm256_set1_epi8(0x30);
  for (int half = 0; half < 2; ++half) {
    const __m256i ql0 = load(block + 64 * half), ql1 = load(block + 64 * half + 32);
    const __m256i qh = load(block + 128 + 32 * half);
    // Group g: nibble g / 2 of ql0 (g even) or ql1 (g odd), bit pair g of qh, moved to bits 4-5.
    store(q + 128 * half, _mm256_or_si256(_mm256_and_si256(ql0, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 4), pair)));
    store(q + 128 * half + 32,
          _mm256_or_si256(_mm256_and_si256(ql1, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 2), pair)));
    store(q + 128 * half + 64,
          _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble), _mm256_and_si256(qh, pair)));
    store(q + 128 * half + 96, _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble),
                                               _mm256_and_si256(_mm256_srli_epi16(qh, 2), pair)));
  }
}

// One row of weights against T tokens: out[t] = W_row . x_t.
template <int T>
NEURONLENS_AVX2 void row_times_tokens(const KUnpacked* w, int64_t blocks, const Q8KBlock* const* x, float* out,
                                      int64_t ldy) {
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const KUnpacked& wb = w[b];
    __m256i dot[T];
    for (int t = 0; t < T; ++t) dot[t] = _mm256_setzero_si256();
    for (int c = 0; c < 8; ++c) {
      // 32 values: sub-blocks 2c (bytes 0-15, the low lane) and 2c + 1.
      const __m256i u = load(wb.q + 32 * c);
      const __m256i scale = _mm256_set_m128i(_mm_set1_epi16(wb.scale[2 * c + 1]), _mm_set1_epi16(wb.scale[2 * c]));
      for (int t = 0; t < T; ++t) {
        const __m256i pairs = _mm256_maddubs_epi16(u, load(x[t][b].q + 32 * c));
        dot[t] = _mm256_add_epi32(dot[t], _mm256_madd_epi16(pairs, scale));
      }
    }
    const __m256i min = load(wb.min);
    for (int t = 0; t < T; ++t) {
      const Q8KBlock& xb = x[t][b];
      const __m256i offset = _mm256_madd_epi16(min, load(xb.sums));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[t]), _mm256_set1_ps(wb.d * xb.d), acc[t]);
      acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(offset), _mm256_set1_ps(wb.dmin * xb.d), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) out[t * ldy] = horizontal_sum(acc[t]);
}


// Sum of the products of 8 int16 pairs, (a0 b0 + ... + a7 b7).
NEURONLENS_AVX2 inline int32_t dot8_epi16(__m128i a, __m128i b) {
  __m128i s = _mm_madd_epi16(a, b);
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

// The Q8_K sums of x per 32 values (sums[2j] + sums[2j + 1]), as 8 int16.
NEURONLENS_AVX2 inline __m128i sums_of_32(const Q8KBlock& x) {
  const __m256i sums = load(x.sums);
  return _mm_hadd_epi16(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
}

// One block of a Q4_K or Q6_K row as the token loop reads it: 32 unsigned
// values a step with the int16 scale of each of its pairs, and what the
// block's epilogue needs. Decoded from the file's bytes on the fly (one
// group of tokens) or once per run of rows into a buffer that every group of
// a prompt reads (run_times_tokens). alignas: GCC gives __m256i members only
// 16-byte alignment outside an -mavx2 build.
struct alignas(32) Q4KDecoded {
  __m256i u[8];      // x's values 32s .. 32s + 31: chunk s / 2's low (s even) or high nibbles
  int16_t scale[8];  // sub-block s's scale
  __m128i mins;      // int16 [8]: the sub-blocks' mins
  float d, dmin;
};

struct alignas(32) Q6KDecoded {
  __m256i u[8];      // x's values 32s .. 32s + 31
  __m256i scale[8];  // sub-blocks 2s (the low 128 bits' pairs) and 2s + 1
  __m256i offsets;   // int16 [16]: -32 * scale per sub-block of 16
  float d;
};

// Q4_K: chunk j of 32 bytes holds sub-block 2j in its low nibbles and 2j + 1
// in its high nibbles, each with one 6-bit scale and min.
NEURONLENS_AVX2 inline Q4KDecoded decode_q4_k(const uint8_t* block) {
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  Q4KDecoded out;
  uint8_t scales_and_mins[16];
  k4_scales_and_mins(block + 4, scales_and_mins);
  out.d = _cvtsh_ss(*reinterpret_cast<const uint16_t*>(block));
  out.dmin = _cvtsh_ss(*reinterpret_cast<const uint16_t*>(block + 2));
  out.mins = _mm_cvtepu8_epi16(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(scales_and_mins + 8)));
  for (int s = 0; s < 8; ++s) out.scale[s] = scales_and_mins[s];
  for (int j = 0; j < 4; ++j) {
    const __m256i v = load(block + 16 + 32 * j);
    out.u[2 * j] = _mm256_and_si256(v, nibble);
    out.u[2 * j + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), nibble);
  }
  return out;
}

// Q6_K: per 128-value half, 64 bytes of low nibbles and 32 of high bit
// pairs; value = q6 - 32 with 16 int8 scales of 16 values each. The -32 is
// taken out through x's sums (32 * scale * sum).
NEURONLENS_AVX2 inline Q6KDecoded decode_q6_k(const uint8_t* block) {
  const __m256i nibble = _mm256_set1_epi8(0x0F), pair = _mm256_set1_epi8(0x30);
  Q6KDecoded out;
  const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
  out.d = _cvtsh_ss(*reinterpret_cast<const uint16_t*>(block + 208));
  // -32 * scale per sub-block of 16 (|32 * scale| <= 4096), against x's sums
  // of 16: the dot products start from the -32's share.
  out.offsets = _mm256_sub_epi16(
      _mm256_setzero_si256(),
      _mm256_slli_epi16(_mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(scales))), 5));
  for (int half = 0; half < 2; ++half) {
    const uint8_t* ql = block + 64 * half;
    const __m256i ql0 = load(ql), ql1 = load(ql + 32), qh = load(block + 128 + 32 * half);
    __m256i* u = out.u + 4 * half;
    u[0] = _mm256_or_si256(_mm256_and_si256(ql0, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 4), pair));
    u[1] = _mm256_or_si256(_mm256_and_si256(ql1, nibble), _mm256_and_si256(_mm256_slli_epi16(qh, 2), pair));
    u[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), nibble), _mm256_and_si256(qh, pair));
    u[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), nibble),
                           _mm256_and_si256(_mm256_srli_epi16(qh, 2), pair));
    for (int g = 0; g < 4; ++g) {
      const int s = 8 * half + 2 * g;  // sub-blocks s (bytes 0-15) and s + 1
      out.scale[4 * half + g] = _mm256_set_m128i(_mm_set1_epi16(scales[s + 1]), _mm_set1_epi16(scales[s]));
    }
  }
  return out;
}

// A token's Q8_K sums per 32 values of one block (sums_of_32), kept for
// every row of a call.
struct alignas(16) Sums32 {
  int16_t v[8];
};

// Rows [first, last) of Q4_K times T tokens; block_at(r, b) gives row r's
// block b as a Q4KDecoded, sums32 [t][b] token t's Q8_K sums per 32 values.
template <int T, typename BlockAt>
NEURONLENS_AVX2 void q4_k_rows(BlockAt block_at, int64_t blocks, int64_t first, int64_t last,
                               const Q8KBlock* const* x, const Sums32* const* sums32, float* y, int64_t ldy) {
  for (int64_t r = first; r < last; ++r) {
    __m256 acc[T];
    float offset[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps(), offset[t] = 0;
    for (int64_t b = 0; b < blocks; ++b) {
      const auto& wb = block_at(r, b);
      __m256i dot[T];
      for (int t = 0; t < T; ++t) dot[t] = _mm256_setzero_si256();
      for (int j = 0; j < 4; ++j) {
        const __m256i lo = wb.u[2 * j], hi = wb.u[2 * j + 1];
        const __m256i scale_lo = _mm256_set1_epi16(wb.scale[2 * j]);
        const __m256i scale_hi = _mm256_set1_epi16(wb.scale[2 * j + 1]);
        for (int t = 0; t < T; ++t) {
          const int8_t* q = x[t][b].q + 64 * j;
          const __m256i p_lo = _mm256_madd_epi16(_mm256_maddubs_epi16(lo, load(q)), scale_lo);
          const __m256i p_hi = _mm256_madd_epi16(_mm256_maddubs_epi16(hi, load(q + 32)), scale_hi);
          dot[t] = _mm256_add_epi32(dot[t], _mm256_add_epi32(p_lo, p_hi));
        }
      }
      for (int t = 0; t < T; ++t) {
        const Q8KBlock& xb = x[t][b];
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[t]), _mm256_set1_ps(wb.d * xb.d), acc[t]);
        const __m128i sums = _mm_load_si128(reinterpret_cast<const __m128i*>(sums32[t][b].v));
        offset[t] += wb.dmin * xb.d * static_cast<float>(dot8_epi16(wb.mins, sums));
      }
    }
    for (int t = 0; t < T; ++t) y[t * ldy + r] = horizontal_sum(acc[t]) - offset[t];
  }
}

// Rows [first, last) of Q6_K times T tokens; block_at(r, b) gives row r's
// block b as a Q6KDecoded.
template <int T, typename BlockAt>
NEURONLENS_AVX2 void q6_k_rows(BlockAt block_at, int64_t blocks, int64_t first, int64_t last,
                               const Q8KBlock* const* x, float* y, int64_t ldy) {
  for (int64_t r = first; r < last; ++r) {
    __m256 acc[T];
    for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      const auto& wb = block_at(r, b);
      __m256i dot[T];
      for (int t = 0; t < T; ++t) dot[t] = _mm256_madd_epi16(wb.offsets, load(x[t][b].sums));
      for (int s = 0; s < 8; ++s) {
        for (int t = 0; t < T; ++t) {
          const __m256i pairs = _mm256_maddubs_epi16(wb.u[s], load(x[t][b].q + 32 * s));
          dot[t] = _mm256_add_epi32(dot[t], _mm256_madd_epi16(pairs, wb.scale[s]));
        }
      }
      for (int t = 0; t < T; ++t) {
        acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(dot[t]), _mm256_set1_ps(wb.d * x[t][b].d), acc[t]);
      }
    }
    for (int t = 0; t < T; ++t) y[t * ldy + r] = horizontal_sum(acc[t]);
  }
}

// Rows [first, last) times T tokens, the blocks decoded from the file as they
// are read (decoded == nullptr) or taken from decoded [last - first][blocks].
template <int T, typename Decoded>
NEURONLENS_AVX2 void rows_times_group(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first,
                                      int64_t last, const Decoded* decoded, const Q8KBlock* const* x,
                                      const Sums32* const* sums32, float* y, int64_t ldy) {
  constexpr bool kQ4 = std::is_same_v<Decoded, Q4KDecoded>;
  if (decoded != nullptr) {
    auto at = [&](int64_t r, int64_t b) -> const Decoded& { return decoded[(r - first) * blocks + b]; };
    if constexpr (kQ4) {
      q4_k_rows<T>(at, blocks, first, last, x, sums32, y, ldy);
    } else {
      q6_k_rows<T>(at, blocks, first, last, x, y, ldy);
    }
    return;
  }
  if constexpr (kQ4) {
    q4_k_rows<T>([&](int64_t r, int64_t b) { return decode_q4_k(w + r * row_bytes + b * 144); }, blocks, first, last,
                 x, sums32, y, ldy);
  } else {
    q6_k_rows<T>([&](int64_t r, int64_t b) { return decode_q6_k(w + r * row_bytes + b * 210); }, blocks, first, last,
                 x, y, ldy);
  }
}

// Tokens a group: T accumulators and dot products, with the step's values
// and scales, fill AVX2's 16 registers at 4.
constexpr int64_t kGroup = 4;

// Rows [first, last) against every token, in groups of kGroup. With more
// than one group the run's blocks are decoded once into a buffer (in L2)
// that every group reads, where decoding them again for each group would
// cost a good part of the products.
template <typename Decoded>
NEURONLENS_AVX2 void run_times_tokens(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first,
                                      int64_t last, const Q8KBlock* x, int64_t tokens, const Sums32* sums32,
                                      float* y, int64_t ldy) {
  thread_local std::vector<Decoded> buffer;
  const Decoded* decoded = nullptr;
  if (tokens > kGroup) {
    buffer.resize(static_cast<size_t>((last - first) * blocks));
    for (int64_t r = first; r < last; ++r) {
      for (int64_t b = 0; b < blocks; ++b) {
        Decoded& out = buffer[static_cast<size_t>((r - first) * blocks + b)];
        if constexpr (std::is_same_v<Decoded, Q4KDecoded>) {
          out = decode_q4_k(w + r * row_bytes + b * 144);
        } else {
          out = decode_q6_k(w + r * row_bytes + b * 210);
        }
      }
    }
    decoded = buffer.data();
  }
  for (int64_t t0 = 0; t0 < tokens; t0 += kGroup) {
    const int64_t group = std::min(kGroup, tokens - t0);
    const Q8KBlock* xs[kGroup];
    const Sums32* sums[kGroup];
    for (int64_t t = 0; t < group; ++t) xs[t] = x + (t0 + t) * blocks, sums[t] = sums32 + (t0 + t) * blocks;
    float* out = y + t0 * ldy;
    switch (group) {
      case 4: rows_times_group<4>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      case 3: rows_times_group<3>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      case 2: rows_times_group<2>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      default: rows_times_group<1>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
    }
  }
}

}  // namespace

NEURONLENS_AVX2 bool kquant_matmul_direct(KFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks,
                                          int64_t first_row, int64_t last_row, const Q8KBlock* x, int64_t tokens,
                                          float* y, int64_t ldy) {
  if (format != KFormat::Q4_K && format != KFormat::Q6_K) return false;
  // x's sums per 32 values, [tokens, blocks], for Q4_K's mins: made once per
  // call, where each row would otherwise make them again.
  thread_local std::vector<Sums32> sums32;
  if (format == KFormat::Q4_K) {
    sums32.resize(static_cast<size_t>(tokens * blocks));
    for (int64_t i = 0; i < tokens * blocks; ++i) {
      _mm_store_si128(reinterpret_cast<__m128i*>(sums32[static_cast<size_t>(i)].v), sums_of_32(x[i]));
    }
  }
  // Rows in runs of 16, each against every token (run_times_tokens).
  constexpr int64_t kRun = 16;
  for (int64_t r = first_row; r < last_row; r += kRun) {
    const int64_t run_end = std::min(last_row, r + kRun);
    if (format == KFormat::Q4_K) {
      run_times_tokens<Q4KDecoded>(w, row_bytes, blocks, r, run_end, x, tokens, sums32.data(), y, ldy);
    } else {
      run_times_tokens<Q6KDecoded>(w, row_bytes, blocks, r, run_end, x, tokens, nullptr, y, ldy);
    }
  }
  return true;
}

NEURONLENS_AVX2 void quantize_q8k(const float* x, int64_t cols, Q8KBlock* out) {
  const __m256 sign = _mm256_set1_ps(-0.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  for (int64_t b = 0; b < cols / kSuperBlock; ++b, x += kSuperBlock) {
    Q8KBlock& o = out[b];
    __m256 amax = _mm256_setzero_ps();
    for (int i = 0; i < kSuperBlock; i += 8) amax = _mm256_max_ps(amax, _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i)));
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(amax), _mm256_extractf128_ps(amax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    const float max = _mm_cvtss_f32(m);
    if (max == 0) {
      std::memset(&o, 0, sizeof o);
      continue;
    }
    const __m256 iscale = _mm256_set1_ps(127.0f / max);
    o.d = 1.0f / (127.0f / max);  // as llama.cpp rounds it: the same 8-bit activations
    for (int i = 0; i < kSuperBlock; i += 32) {
      __m256i v[4];
      for (int k = 0; k < 4; ++k) v[k] = _mm256_cvtps_epi32(_mm256_mul_ps(_mm256_loadu_ps(x + i + 8 * k), iscale));
      // Sums of 16: v[0] + v[1] and v[2] + v[3].
      o.sums[i / 16] = static_cast<int16_t>(horizontal_sum(_mm256_add_epi32(v[0], v[1])));
      o.sums[i / 16 + 1] = static_cast<int16_t>(horizontal_sum(_mm256_add_epi32(v[2], v[3])));
      const __m256i packed = _mm256_packs_epi16(_mm256_packs_epi32(v[0], v[1]), _mm256_packs_epi32(v[2], v[3]));
      store(o.q + i, _mm256_permutevar8x32_epi32(packed, order));
    }
  }
}

NEURONLENS_AVX2 void unpack_kblocks(KFormat format, const uint8_t* blocks, int64_t n_blocks, KUnpacked* out) {
  const int64_t bytes = kformat_block_bytes(format);
  for (int64_t b = 0; b < n_blocks; ++b, blocks += bytes) {
    portable::unpack_kscales(format, blocks, out[b]);
    switch (format) {
      case KFormat::Q2_K: values_q2_k(blocks, out[b].q); break;
      case KFormat::Q3_K: values_q3_k(blocks, out[b].q); break;
      case KFormat::Q4_K: values_q4_k(blocks, out[b].q); break;
      case KFormat::Q5_K: values_q5_k(blocks, out[b].q); break;
      case KFormat::Q6_K: values_q6_k(blocks, out[b].q); break;
    }
  }
}

NEURONLENS_AVX2 void kquant_product(const KUnpacked* w, int64_t rows, int64_t blocks, const Q8KBlock* x, int64_t tokens,
                                    float* y, int64_t ldy) {
  static constexpr UnpackedRowKernel row_for[4] = {row_times_tokens<1>, row_times_tokens<2>, row_times_tokens<3>,
                                                   row_times_tokens<4>};
  product_by_token_groups(row_for, w, rows, blocks, x, tokens, y, ldy);
}

}  // namespace neuronlens::cpu::avx2
#endif

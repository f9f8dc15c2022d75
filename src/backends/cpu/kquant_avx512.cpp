// K-quant products on AVX-512 with VNNI (kquant.h): the Q4_K and Q6_K rows
// read straight from the file's blocks (the types of Q4_K_M files), and the
// product of the unpacked common form that Q2_K, Q3_K and Q5_K go through.
// The unpacking and the activation quantiser stay AVX2 (kquant.cpp sends the
// Avx512Vnni path there): they are a small share of the work.
//
// One step takes 64 weight values (four or two sub-blocks) of one token in
// one 512-bit register. vpmaddubsw multiplies the unsigned values by the
// signed activations and adds pairs into int16, exactly: q <= 63 in every
// type's common form, so |pair| <= 2 * 63 * 127 = 16002 and its saturation
// cannot happen. VNNI's vpdpwssd then multiplies the pairs by their
// sub-block's scale and adds them into the int32 sums in one instruction,
// where the AVX2 code needs vpmaddwd and vpaddd. (vpdpbusd adds four byte
// products into int32 at once, but the per-sub-block scale would then cost a
// vpmulld per step: three instructions to this code's two.)
//
// Results are bit for bit the AVX2 path's. Int32 lane k of each 256-bit half
// of a step holds the products of bytes 4k .. 4k + 3 of its 32 values, as
// lane k of the AVX2 code's step does; the two halves are added (exact
// integers) onto those 8 lanes before any float is touched, and the float
// part is the AVX2 code's, operation for operation, on the same 8 lanes.
// Compiled for every x86-64 CPU by target, called only where can_run says
// the CPU has all of it.
#if defined(__x86_64__)
#include <immintrin.h>

#include <algorithm>
#include <type_traits>
#include <vector>

#include "backends/cpu/kquant_impl.h"

// gcc takes the target as a pragma, clang as an attribute on every function
// defined until the pop.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512vnni,avx2,fma,f16c")
// GCC 12's AVX-512 cast, broadcast and shift intrinsics start from an
// "undefined" register that -Wmaybe-uninitialized and -Wuninitialized flag
// inside these headers (clang has no such warning, and would warn of the
// unknown name).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

namespace neuronlens::cpu::avx512 {
namespace {

inline float horizontal_sum(__m256 v) {
  __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  s = _mm_add_ss(s, _mm_movehdup_ps(s));
  return _mm_cvtss_f32(s);
}

inline __m256i load256(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }
inline __m512i load512(const void* p) { return _mm512_loadu_si512(p); }

// The 16 int32 sums of 512-bit steps onto the AVX2 code's 8 lanes: lane k + 8
// onto lane k.
inline __m256i fold(__m512i v) { return _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1)); }

// sums + the products of 64 values u [64] (unsigned) with x [64] (signed),
// int16 pair k times scale [k] (int16 [32]), into int32 lane k / 2.
inline __m512i add_scaled(__m512i sums, __m512i u, const int8_t* x, __m512i scale) {
  return _mm512_dpwssd_epi32(sums, _mm512_maddubs_epi16(u, load512(x)), scale);
}

// int16 [32]: scales [first + index [i]], from 16 int16 scales.
inline __m512i spread_scales(__m256i scales, __m512i index, int first) {
  return _mm512_permutexvar_epi16(_mm512_add_epi16(index, _mm512_set1_epi16(static_cast<int16_t>(first))),
                                  _mm512_castsi256_si512(scales));
}

// The sub-block of each int16 pair of a step of four sub-blocks of 16
// values: 0 0 0 0 0 0 0 0 1 ... 3.
inline __m512i quarter_index() {
  return _mm512_cvtepu8_epi16(
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
}

// The Q8_K sums of x per 32 values (sums[2j] + sums[2j + 1]), as 8 int16.
inline __m128i sums_of_32(const Q8KBlock& x) {
  const __m256i sums = load256(x.sums);
  return _mm_hadd_epi16(_mm256_castsi256_si128(sums), _mm256_extracti128_si256(sums, 1));
}

// One row of unpacked weights against T tokens: out[t * ldy] = W_row . x_t.
template <int T>
void row_times_tokens(const KUnpacked* w, int64_t blocks, const Q8KBlock* const* x, float* out, int64_t ldy) {
  const __m512i quarters = quarter_index();
  __m256 acc[T];
  for (int t = 0; t < T; ++t) acc[t] = _mm256_setzero_ps();
  for (int64_t b = 0; b < blocks; ++b) {
    const KUnpacked& wb = w[b];
    const __m256i scales = load256(wb.scale);
    __m512i dot[T];
    for (int t = 0; t < T; ++t) dot[t] = _mm512_setzero_si512();
    for (int p = 0; p < 4; ++p) {
      // 64 values: sub-blocks 4p .. 4p + 3.
      const __m512i u = load512(wb.q + 64 * p);
      const __m512i scale = spread_scales(scales, quarters, 4 * p);
      for (int t = 0; t < T; ++t) dot[t] = add_scaled(dot[t], u, x[t][b].q + 64 * p, scale);
    }
    const __m256i min = load256(wb.min);
    for (int t = 0; t < T; ++t) {
      const Q8KBlock& xb = x[t][b];
      const __m256i offset = _mm256_madd_epi16(min, load256(xb.sums));
      acc[t] = _mm256_fmadd_ps(_mm256_cvtepi32_ps(fold(dot[t])), _mm256_set1_ps(wb.d * xb.d), acc[t]);
      acc[t] = _mm256_fnmadd_ps(_mm256_cvtepi32_ps(offset), _mm256_set1_ps(wb.dmin * xb.d), acc[t]);
    }
  }
  for (int t = 0; t < T; ++t) out[t * ldy] = horizontal_sum(acc[t]);
}

// Tokens a group: AVX2 takes 4, all its 16 registers hold; 8 tokens' sums
// fit in 32, and a run's blocks are read half as often (bench/README.md).
constexpr int64_t kGroup = 8;

// What the rows' epilogues need of x, for one block and one group of up to
// 8 tokens: each token's sums per 32 values (sums_of_32, for Q4_K's mins)
// and its scale. Made once per group and call, where the AVX2 code reads or
// makes them once per row; tokens past the group's end are zeros.
struct GroupBlockSums {
  int16_t sums32[8][8];  // [token][32-value chunk]
  float d[8];            // [token]
};

// The 8 tokens' integer offsets of one block, sum_j mins[j] * sums32[t][j]
// (exact integers, as the AVX2 code's dot8_epi16 of each token).
inline __m256i group_offsets(__m128i mins, const GroupBlockSums& g) {
  const __m512i m = _mm512_broadcast_i32x4(mins);
  __m512i low = _mm512_madd_epi16(m, load512(&g.sums32[0][0]));   // tokens 0-3, 4 int32 each
  __m512i high = _mm512_madd_epi16(m, load512(&g.sums32[4][0]));  // tokens 4-7
  low = _mm512_add_epi32(low, _mm512_shuffle_epi32(low, _MM_PERM_BADC));
  low = _mm512_add_epi32(low, _mm512_shuffle_epi32(low, _MM_PERM_CDAB));
  high = _mm512_add_epi32(high, _mm512_shuffle_epi32(high, _MM_PERM_BADC));
  high = _mm512_add_epi32(high, _mm512_shuffle_epi32(high, _MM_PERM_CDAB));
  // Lane 4k of each now holds token k's total.
  const __m512i firsts = _mm512_setr_epi32(0, 4, 8, 12, 16, 20, 24, 28, 0, 0, 0, 0, 0, 0, 0, 0);
  return _mm512_castsi512_si256(_mm512_permutex2var_epi32(low, firsts, high));
}

// One block of a Q4_K or Q6_K row as the token loop reads it: the weights'
// four steps of 64 unsigned values (x's values 64s .. 64s + 63) with each
// int16 pair's sub-block scale, and what the block's epilogue needs. Decoded
// from the file's bytes either on the fly (one group of tokens) or once per
// run of rows into a buffer that every group of a prompt reads
// (run_times_tokens). alignas: outside an -mavx512f build GCC gives __m512i
// members only 16-byte alignment, so a vector of these would not be aligned
// for the 512-bit moves the code here makes.
struct alignas(64) Q4KDecoded {
  __m512i u[4];
  __m512i scale[4];
  __m128i mins;  // int16 [8]: the sub-blocks' mins
  float d, dmin;
};

struct alignas(64) Q6KDecoded {
  __m512i u[4];
  __m512i scale[4];
  __m256i offsets;  // int16 [16]: -32 * scale per sub-block of 16
  float d;
};

// Q4_K: chunk j of 32 bytes holds sub-block 2j in its low nibbles and 2j + 1
// in its high ones, each with one 6-bit scale and min. Step j is chunk j, the
// low nibbles in the low 256 bits and the high in the high. Always inlined
// (as decode_q6_k): decoded on the fly for one token, a called function's
// result would go through memory.
__attribute__((always_inline)) inline Q4KDecoded decode_q4_k(const uint8_t* block) {
  const __m512i nibble = _mm512_set1_epi8(0x0F), shift = _mm512_setr_epi64(0, 0, 0, 0, 4, 4, 4, 4);
  // The sub-block of each int16 pair, 0 for the low nibbles and 1 for the high.
  const __m512i halves = _mm512_cvtepu8_epi16(
      _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1));
  Q4KDecoded out;
  uint8_t scales_and_mins[16];
  k4_scales_and_mins(block + 4, scales_and_mins);
  out.d = _cvtsh_ss(*reinterpret_cast<const uint16_t*>(block));
  out.dmin = _cvtsh_ss(*reinterpret_cast<const uint16_t*>(block + 2));
  const __m128i packed = _mm_loadu_si128(reinterpret_cast<const __m128i*>(scales_and_mins));
  const __m256i scales = _mm256_cvtepu8_epi16(packed);  // [0, 8) the scales, [8, 16) the mins
  out.mins = _mm_cvtepu8_epi16(_mm_srli_si128(packed, 8));
  for (int j = 0; j < 4; ++j) {
    const __m512i v = _mm512_broadcast_i64x4(load256(block + 16 + 32 * j));
    out.u[j] = _mm512_and_si512(_mm512_srlv_epi64(v, shift), nibble);
    out.scale[j] = spread_scales(scales, halves, 2 * j);
  }
  return out;
}

// Q6_K: per 128-value half, 64 bytes of low nibbles and 32 of high bit
// pairs; value = q6 - 32 with 16 int8 scales of 16 values each. The -32 is
// taken out through x's sums (32 * scale * sum). Steps 2h and 2h + 1 are the
// AVX2 code's groups 0-1 and 2-3 of half h: the 64 bytes of low nibbles are
// one load.
__attribute__((always_inline)) inline Q6KDecoded decode_q6_k(const uint8_t* block) {
  const __m512i nibble = _mm512_set1_epi8(0x0F), pair = _mm512_set1_epi8(0x30);
  // Bit pairs 0 and 1 of qh (the low and high 256 bits of a step) up to bits
  // 4-5, and pairs 2 and 3 down to them.
  const __m512i up = _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2), down = _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2);
  const __m512i quarters = quarter_index();
  Q6KDecoded out;
  const __m128i packed_scales = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 192));
  out.d = _cvtsh_ss(*reinterpret_cast<const uint16_t*>(block + 208));
  const __m256i scales = _mm256_cvtepi8_epi16(packed_scales);
  // -32 * scale per sub-block of 16 (|32 * scale| <= 4096), against x's sums
  // of 16, added to the AVX2 lanes as the AVX2 code starts from it.
  out.offsets = _mm256_sub_epi16(_mm256_setzero_si256(), _mm256_slli_epi16(scales, 5));
  for (int half = 0; half < 2; ++half) {
    const __m512i ql = load512(block + 64 * half);
    const __m512i qh = _mm512_broadcast_i64x4(load256(block + 128 + 32 * half));
    out.u[2 * half] =
        _mm512_or_si512(_mm512_and_si512(ql, nibble), _mm512_and_si512(_mm512_sllv_epi64(qh, up), pair));
    out.u[2 * half + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(ql, 4), nibble),
                                          _mm512_and_si512(_mm512_srlv_epi64(qh, down), pair));
    out.scale[2 * half] = spread_scales(scales, quarters, 8 * half);
    out.scale[2 * half + 1] = spread_scales(scales, quarters, 8 * half + 4);
  }
  return out;
}

// The four steps of one decoded block against T tokens' block b: dot[t]
// gets the AVX2 code's int32 lanes, twice over (fold() adds the halves).
template <int T, typename Decoded>
inline void block_dots(const Decoded& wb, const Q8KBlock* const* x, int64_t b, __m512i* dot) {
  for (int s = 0; s < 4; ++s) {
    for (int t = 0; t < T; ++t) dot[t] = add_scaled(dot[t], wb.u[s], x[t][b].q + 64 * s, wb.scale[s]);
  }
}

// fold() of tokens 2p and 2p + 1 at once: their 256-bit halves added.
inline __m512i fold_pair(__m512i a, __m512i c) {
  return _mm512_add_epi32(_mm512_shuffle_i64x2(a, c, _MM_SHUFFLE(1, 0, 1, 0)),
                          _mm512_shuffle_i64x2(a, c, _MM_SHUFFLE(3, 2, 3, 2)));
}

// Rows [first, last) of Q4_K times T tokens; block_at(r, b) gives row r's
// block b as a Q4KDecoded. The mins' offsets of all T tokens are one vector
// (group [blocks]): per lane the AVX2 code's float operations, in its order.
template <int T, typename BlockAt>
void q4_k_rows(BlockAt block_at, int64_t blocks, int64_t first, int64_t last, const Q8KBlock* const* x,
               const GroupBlockSums* group, float* y, int64_t ldy) {
  // Tokens in pairs, 2p in the low 8 float lanes of acc[p] and 2p + 1 in the
  // high: one conversion and one FMA a pair, per lane the AVX2 code's. An odd
  // T's last pair has an idle upper half (dot zero, scale zero).
  constexpr int P = (T + 1) / 2;
  // Float lane l of pair p takes token 2p + l / 8.
  const __m512i pair_lanes = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  for (int64_t r = first; r < last; ++r) {
    __m512 acc[P];
    for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
    __m256 offsets = _mm256_setzero_ps();  // [token]
    for (int64_t b = 0; b < blocks; ++b) {
      const auto& wb = block_at(r, b);
      __m512i dot[2 * P];
      for (int t = 0; t < 2 * P; ++t) dot[t] = _mm512_setzero_si512();
      block_dots<T>(wb, x, b, dot);
      const GroupBlockSums& g = group[b];
      // d * d_x[t] for the 8 tokens, each the AVX2 code's scalar product.
      const __m512 d_dx = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_set1_ps(wb.d), _mm256_loadu_ps(g.d)));
      for (int p = 0; p < P; ++p) {
        const __m512 scale = _mm512_permutexvar_ps(_mm512_add_epi32(pair_lanes, _mm512_set1_epi32(2 * p)), d_dx);
        acc[p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(fold_pair(dot[2 * p], dot[2 * p + 1])), scale, acc[p]);
      }
      // offset[t] += dmin * d_x[t] * float(integer offset[t]), as AVX2 does.
      const __m256 dmin_dx = _mm256_mul_ps(_mm256_set1_ps(wb.dmin), _mm256_loadu_ps(g.d));
      offsets = _mm256_add_ps(offsets, _mm256_mul_ps(dmin_dx, _mm256_cvtepi32_ps(group_offsets(wb.mins, g))));
    }
    float offset[8];
    _mm256_storeu_ps(offset, offsets);
    for (int p = 0; p < P; ++p) {
      const __m256 low = _mm512_castps512_ps256(acc[p]);
      const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[p]), 1));
      y[2 * p * ldy + r] = horizontal_sum(low) - offset[2 * p];
      if (2 * p + 1 < T) y[(2 * p + 1) * ldy + r] = horizontal_sum(high) - offset[2 * p + 1];
    }
  }
}

// Rows [first, last) of Q6_K times T tokens; block_at(r, b) gives row r's
// block b as a Q6KDecoded.
template <int T, typename BlockAt>
void q6_k_rows(BlockAt block_at, int64_t blocks, int64_t first, int64_t last, const Q8KBlock* const* x,
               const GroupBlockSums* group, float* y, int64_t ldy) {
  constexpr int P = (T + 1) / 2;  // token pairs, as in q4_k_rows
  const __m512i pair_lanes = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1);
  for (int64_t r = first; r < last; ++r) {
    __m512 acc[P];
    for (int p = 0; p < P; ++p) acc[p] = _mm512_setzero_ps();
    for (int64_t b = 0; b < blocks; ++b) {
      const auto& wb = block_at(r, b);
      __m512i dot[2 * P];  // dot[T] stays zero when T is odd
      for (int t = 0; t < 2 * P; ++t) dot[t] = _mm512_setzero_si512();
      block_dots<T>(wb, x, b, dot);
      const __m512i offsets2 = _mm512_broadcast_i64x4(wb.offsets);
      const __m512 d_dx = _mm512_castps256_ps512(_mm256_mul_ps(_mm256_set1_ps(wb.d), _mm256_loadu_ps(group[b].d)));
      for (int p = 0; p < P; ++p) {
        // Tokens 2p and 2p + 1: x's sums of 16 against the offsets, plus
        // fold() of both dots, all exact.
        const __m256i sums_b = 2 * p + 1 < T ? load256(x[2 * p + 1][b].sums) : _mm256_setzero_si256();
        const __m512i x_sums = _mm512_inserti64x4(_mm512_castsi256_si512(load256(x[2 * p][b].sums)), sums_b, 1);
        const __m512i sums =
            _mm512_add_epi32(_mm512_madd_epi16(offsets2, x_sums), fold_pair(dot[2 * p], dot[2 * p + 1]));
        const __m512 scale = _mm512_permutexvar_ps(_mm512_add_epi32(pair_lanes, _mm512_set1_epi32(2 * p)), d_dx);
        acc[p] = _mm512_fmadd_ps(_mm512_cvtepi32_ps(sums), scale, acc[p]);
      }
    }
    for (int p = 0; p < P; ++p) {
      y[2 * p * ldy + r] = horizontal_sum(_mm512_castps512_ps256(acc[p]));
      if (2 * p + 1 < T) {
        y[(2 * p + 1) * ldy + r] =
            horizontal_sum(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[p]), 1)));
      }
    }
  }
}

// Rows [first, last) times T tokens, the blocks decoded from the file as they
// are read (decoded == nullptr) or taken from decoded [last - first][blocks].
template <int T, typename Decoded>
void rows_times_group(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first, int64_t last,
                      const Decoded* decoded, const Q8KBlock* const* x, const GroupBlockSums* group, float* y,
                      int64_t ldy) {
  constexpr bool kQ4 = std::is_same_v<Decoded, Q4KDecoded>;
  if (decoded != nullptr) {
    auto at = [&](int64_t r, int64_t b) -> const Decoded& { return decoded[(r - first) * blocks + b]; };
    if constexpr (kQ4) {
      q4_k_rows<T>(at, blocks, first, last, x, group, y, ldy);
    } else {
      q6_k_rows<T>(at, blocks, first, last, x, group, y, ldy);
    }
    return;
  }
  if constexpr (kQ4) {
    q4_k_rows<T>([&](int64_t r, int64_t b) { return decode_q4_k(w + r * row_bytes + b * 144); }, blocks, first, last,
                 x, group, y, ldy);
  } else {
    q6_k_rows<T>([&](int64_t r, int64_t b) { return decode_q6_k(w + r * row_bytes + b * 210); }, blocks, first, last,
                 x, group, y, ldy);
  }
}

// Rows [first, last) against every token, in groups of kGroup. With more
// than one group the run's blocks are decoded once into a buffer (a few
// hundred KB, in L2) that every group reads, where decoding them again for
// each group would cost as much as the products of one.
template <typename Decoded>
void run_times_tokens(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first, int64_t last,
                      const Q8KBlock* x, int64_t tokens, const GroupBlockSums* group_sums, float* y, int64_t ldy) {
  thread_local std::vector<Decoded> buffer;
  const Decoded* decoded = nullptr;
  if (tokens > kGroup) {
    buffer.resize(static_cast<size_t>((last - first) * blocks));
    const int64_t block_bytes = std::is_same_v<Decoded, Q4KDecoded> ? 144 : 210;
    for (int64_t r = first; r < last; ++r) {
      for (int64_t b = 0; b < blocks; ++b) {
        const uint8_t* block = w + r * row_bytes + b * block_bytes;
        if constexpr (std::is_same_v<Decoded, Q4KDecoded>) {
          buffer[static_cast<size_t>((r - first) * blocks + b)] = decode_q4_k(block);
        } else {
          buffer[static_cast<size_t>((r - first) * blocks + b)] = decode_q6_k(block);
        }
      }
    }
    decoded = buffer.data();
  }
  for (int64_t t0 = 0; t0 < tokens; t0 += kGroup) {
    const int64_t group = std::min(kGroup, tokens - t0);
    const Q8KBlock* xs[kGroup];
    for (int64_t t = 0; t < group; ++t) xs[t] = x + (t0 + t) * blocks;
    const GroupBlockSums* sums = group_sums + t0 / kGroup * blocks;
    float* out = y + t0 * ldy;
    switch (group) {
      case 8: rows_times_group<8>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      case 7: rows_times_group<7>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      case 6: rows_times_group<6>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      case 5: rows_times_group<5>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      case 4: rows_times_group<4>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      case 3: rows_times_group<3>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      case 2: rows_times_group<2>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
      default: rows_times_group<1>(w, row_bytes, blocks, first, last, decoded, xs, sums, out, ldy); break;
    }
  }
}

}  // namespace

bool kquant_matmul_direct(KFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                          int64_t last_row, const Q8KBlock* x, int64_t tokens, float* y, int64_t ldy) {
  if (format != KFormat::Q4_K && format != KFormat::Q6_K) return false;
  // Tokens in groups of kGroup against rows in runs of 16 (run_times_tokens).
  constexpr int64_t kRun = 16;
  const int64_t groups = (tokens + kGroup - 1) / kGroup;
  // x's sums per 32 values and scales, [groups, blocks], for every group's
  // epilogue (q4_k_rows, q6_k_rows); made once per call, reused by every row.
  thread_local std::vector<GroupBlockSums> group_sums;
  {
    group_sums.assign(static_cast<size_t>(groups * blocks), GroupBlockSums{});
    for (int64_t t = 0; t < tokens; ++t) {
      for (int64_t b = 0; b < blocks; ++b) {
        const Q8KBlock& xb = x[t * blocks + b];
        GroupBlockSums& g = group_sums[static_cast<size_t>((t / kGroup) * blocks + b)];
        _mm_storeu_si128(reinterpret_cast<__m128i*>(g.sums32[t % kGroup]), sums_of_32(xb));
        g.d[t % kGroup] = xb.d;
      }
    }
  }
  for (int64_t r = first_row; r < last_row; r += kRun) {
    const int64_t run_end = std::min(last_row, r + kRun);
    if (format == KFormat::Q4_K) {
      run_times_tokens<Q4KDecoded>(w, row_bytes, blocks, r, run_end, x, tokens, group_sums.data(), y, ldy);
    } else {
      run_times_tokens<Q6KDecoded>(w, row_bytes, blocks, r, run_end, x, tokens, group_sums.data(), y, ldy);
    }
  }
  return true;
}

void kquant_product(const KUnpacked* w, int64_t rows, int64_t blocks, const Q8KBlock* x, int64_t tokens, float* y,
                    int64_t ldy) {
  static constexpr UnpackedRowKernel row_for[4] = {row_times_tokens<1>, row_times_tokens<2>, row_times_tokens<3>,
                                                   row_times_tokens<4>};
  product_by_token_groups(row_for, w, rows, blocks, x, tokens, y, ldy);
}

}  // namespace neuronlens::cpu::avx512

#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC diagnostic pop
#pragma GCC pop_options
#endif
#endif

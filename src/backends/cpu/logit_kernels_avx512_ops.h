// The AVX-512 vector operations of the kernel template (logit_kernels_impl.h),
// shared by the avx512 and avx512bf16 sets: float32 FMAs, and bf16 pairs
// emulated by two FMAs (the avx512bf16 set replaces dot2 with vdpbf16ps).
// Included after the file's `#pragma GCC target` and <immintrin.h>; it
// includes nothing itself, and its anonymous namespace gives each file its
// own copy, compiled for that file's target.
#pragma once

namespace neuronlens::cpu {
namespace {

struct Avx512Ops {
  static constexpr int W = 16;
  using V = __m512;
  using P = __m512i;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_load_ps(p); }
  static V loadu(const float* p) { return _mm512_loadu_ps(p); }
  static V bcast(const float* p) { return _mm512_set1_ps(*p); }
  static V fma(V a, V b, V acc) { return _mm512_fmadd_ps(a, b, acc); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static void storeu(float* p, V v) { _mm512_storeu_ps(p, v); }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1); }
  static P load_pairs(const unsigned* p) { return _mm512_load_si512(p); }
  static P bcast_pair(const unsigned* p) { return _mm512_set1_epi32(static_cast<int>(*p)); }
  // Emulated, as in the AVX2 set (only the avx512 set uses it).
  static V dot2(V acc, P a, P b) {
    const __m512i high = _mm512_set1_epi32(static_cast<int>(0xffff0000u));
    acc = _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_and_si512(a, high)), _mm512_castsi512_ps(_mm512_and_si512(b, high)),
                          acc);
    return _mm512_fmadd_ps(_mm512_castsi512_ps(_mm512_slli_epi32(a, 16)), _mm512_castsi512_ps(_mm512_slli_epi32(b, 16)),
                           acc);
  }
};

}  // namespace
}  // namespace neuronlens::cpu

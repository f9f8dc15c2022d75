// The AVX-512 kernel set: 12 x 32 tiles, twenty-four 16-float accumulators
// (of 32 registers), two B loads and twelve broadcasts per step; bf16 pairs
// emulated (the avx512bf16 set, logit_kernels_avx512_bf16.cpp, has them on
// vdpbf16ps). Written for CPUs this project's machines may lack: the same
// template runs at this width in the portable16 set, which every test run
// checks.
#if defined(__x86_64__)
#include <immintrin.h>

#include "backends/cpu/logit_kernels.h"

#pragma GCC push_options
// GCC 12's AVX-512 shift and zero intrinsics start from an "undefined"
// register that -Wmaybe-uninitialized flags inside these headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
#include "backends/cpu/logit_kernels_impl.h"

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

using Tiles = kernels::LogitTiles<Avx512Ops, 12>;

}  // namespace

// The table itself is made by code for any CPU: it is read before the CPU
// is checked.
#pragma GCC pop_options
#pragma GCC diagnostic pop

const LogitKernels& avx512_logit_kernels() {
  static const LogitKernels k{LogitKernelSet::Avx512, "avx512", 12, Tiles::NR, false, Tiles::product_f32,
                              Tiles::product_bf16};
  return k;
}

}  // namespace neuronlens::cpu
#endif

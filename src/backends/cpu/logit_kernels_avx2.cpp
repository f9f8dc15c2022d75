// The AVX2 + FMA kernel set: 6 x 16 tiles, twelve 8-float accumulators, two
// B loads and six broadcasts per step (the usual AVX2 choice, as in BLIS's
// Haswell kernel). bf16 pairs are emulated by two FMAs (logit_kernels.h).
#if defined(__x86_64__)
#include <immintrin.h>

#include "backends/cpu/logit_kernels.h"

// gcc takes the target as a pragma, clang as an attribute on every function
// defined until the pop.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx2,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx2,fma")
#endif
#include "backends/cpu/logit_kernels_impl.h"

namespace neuronlens::cpu {
namespace {

struct Avx2Ops {
  static constexpr int W = 8;
  using V = __m256;
  using P = __m256i;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_load_ps(p); }
  static V loadu(const float* p) { return _mm256_loadu_ps(p); }
  static V bcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V acc) { return _mm256_fmadd_ps(a, b, acc); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static void storeu(float* p, V v) { _mm256_storeu_ps(p, v); }
  static void prefetch(const void* p) { _mm_prefetch(static_cast<const char*>(p), _MM_HINT_T1); }
  static P load_pairs(const unsigned* p) { return _mm256_load_si256(reinterpret_cast<const __m256i*>(p)); }
  static P bcast_pair(const unsigned* p) { return _mm256_set1_epi32(static_cast<int>(*p)); }
  static V dot2(V acc, P a, P b) {
    const __m256i high = _mm256_set1_epi32(static_cast<int>(0xffff0000u));
    acc = _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_and_si256(a, high)), _mm256_castsi256_ps(_mm256_and_si256(b, high)),
                          acc);
    return _mm256_fmadd_ps(_mm256_castsi256_ps(_mm256_slli_epi32(a, 16)), _mm256_castsi256_ps(_mm256_slli_epi32(b, 16)),
                           acc);
  }
};
using Tiles = kernels::LogitTiles<Avx2Ops, 6>;

}  // namespace

// The table itself is made by code for any CPU: it is read before the CPU
// is checked.
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif

const LogitKernels& avx2_logit_kernels() {
  static const LogitKernels k{LogitKernelSet::Avx2, "avx2", 6, Tiles::NR, false, Tiles::product_f32,
                              Tiles::product_bf16};
  return k;
}

}  // namespace neuronlens::cpu
#endif

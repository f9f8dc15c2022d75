// gated_activation.h on AVX2 and FMA, 8 values a step, by target attribute
// (gated_activation.cpp calls in only where the CPU has them).
#include "backends/cpu/gated_activation.h"

#if defined(__x86_64__)
#include <immintrin.h>

#include <cmath>
#include <limits>

#define NEURONLENS_ACT_TARGET __attribute__((target("avx2,fma")))

namespace neuronlens::cpu::avx2 {
namespace {

// e^x for 8 floats: x = n ln2 + r with |r| <= ln2 / 2 (ln2 in two parts, so
// that n ln2 is exact), e^r from Cephes expf's polynomial, 2^n put into the
// exponent. Below -87.3 x is taken as -87.3, so that 2^n stays a normal
// float (the callers' 1 + e^x is 1 either way); above 88.3 the result is
// +inf, so that g / (1 + e^x) is the zero it tends to.
NEURONLENS_ACT_TARGET inline __m256 exp8(__m256 x) {
  const __m256 overflow = _mm256_cmp_ps(x, _mm256_set1_ps(88.3f), _CMP_GT_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
  __m256 p = _mm256_set1_ps(1.9875691500e-4f);
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
  p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
  p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r);
  p = _mm256_add_ps(p, _mm256_set1_ps(1.0f));
  const __m256i exponent = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_blendv_ps(_mm256_mul_ps(p, _mm256_castsi256_ps(exponent)),
                          _mm256_set1_ps(std::numeric_limits<float>::infinity()), overflow);
}

// g / (1 + e^(-s g')) * up for 8 values, with the exponent's argument given.
NEURONLENS_ACT_TARGET inline __m256 gated(__m256 g, __m256 minus_argument, __m256 up) {
  return _mm256_mul_ps(_mm256_div_ps(g, _mm256_add_ps(_mm256_set1_ps(1.0f), exp8(minus_argument))), up);
}

// The tail (n % 8 values) through the same 8-wide code, in a padded copy:
// every value gets the same arithmetic wherever it sits.
template <typename Step>
NEURONLENS_ACT_TARGET inline void for_each_8(float* gate, const float* up, int64_t n, Step step) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(gate + i, step(_mm256_loadu_ps(gate + i), _mm256_loadu_ps(up + i)));
  if (i < n) {
    float g[8] = {}, u[8] = {};
    for (int64_t j = i; j < n; ++j) g[j - i] = gate[j], u[j - i] = up[j];
    _mm256_storeu_ps(g, step(_mm256_loadu_ps(g), _mm256_loadu_ps(u)));
    for (int64_t j = i; j < n; ++j) gate[j] = g[j - i];
  }
}

struct Silu {
  NEURONLENS_ACT_TARGET __m256 operator()(__m256 g, __m256 up) const {
    return gated(g, _mm256_sub_ps(_mm256_setzero_ps(), g), up);
  }
};

struct GeluTanh {
  NEURONLENS_ACT_TARGET __m256 operator()(__m256 g, __m256 up) const {
    // -2u = -2 √(2/π) (g + 0.044715 g³)
    const __m256 cube = _mm256_mul_ps(_mm256_mul_ps(g, g), g);
    const __m256 inner = _mm256_fmadd_ps(_mm256_set1_ps(0.044715f), cube, g);
    return gated(g, _mm256_mul_ps(_mm256_set1_ps(-2.0f * 0.7978845608028654f), inner), up);
  }
};

}  // namespace

NEURONLENS_ACT_TARGET void gated_product(Gate gate_kind, float* gate, const float* up, int64_t n) {
  if (gate_kind == Gate::GeluTanh) return for_each_8(gate, up, n, GeluTanh{});
  for_each_8(gate, up, n, Silu{});
}

}  // namespace neuronlens::cpu::avx2

#endif  // __x86_64__

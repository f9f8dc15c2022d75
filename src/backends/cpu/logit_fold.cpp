#include "backends/cpu/logit_fold.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include "backends/cpu/cpu_clones.h"

// Simple loops are cloned (cpu_clones.h); the exp loop, which the compiler
// will not vectorise on its own, has AVX2 intrinsics chosen at run time.
// Rounding differences between clones do not matter here: these sums feed a
// softmax normaliser, not a bit-exact reference.

namespace neuronlens::cpu {
namespace {

// exp(x) for -87 <= x <= 88 (below -87 it gives about exp(-87), which is 0 next
// to any sum it joins), about 2 ulp, branch-free so loops over it vectorise.
// Cephes-style: x = n ln2 + r with |r| <= ln2/2, exp(r) by a polynomial.
inline float exp_nonpositive(float x) {
  x = std::max(x, -87.0f);  // exp underflows to 0 in float32 below this anyway
  const float n = std::nearbyint(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;  // ln2 split hi/lo for an exact reduction
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

}  // namespace

NEURONLENS_CPU_CLONES
float max_of(const float* z, int64_t n) {
  // Eight independent maxima so the loop vectorises without -ffast-math.
  float m[8] = {-INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY, -INFINITY};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    for (int k = 0; k < 8; ++k) m[k] = std::max(m[k], z[i + k]);
  }
  for (; i < n; ++i) m[0] = std::max(m[0], z[i]);
  return *std::max_element(m, m + 8);
}

namespace {

float exp_sums_portable(const float* z, int64_t n, float m, ExpSums& sums) {
  constexpr int64_t kRun = kExpSumRun;  // float partial sums over short runs, then double
  float top = -INFINITY;
  for (int64_t start = 0; start < n; start += kRun) {
    const int64_t end = std::min(n, start + kRun);
    float s = 0, u = 0, w = 0;
    for (int64_t i = start; i < end; ++i) {
      const float shifted = z[i] - m;
      const float e = exp_nonpositive(shifted);
      s += e;
      u += e * shifted;
      w += e * shifted * shifted;
      top = std::max(top, z[i]);
    }
    sums.exp += s;
    sums.shift += u;
    sums.shift2 += w;
  }
  return top;
}

double dot_f64_portable(const float* a, const float* b, int64_t n) {
  // Four running sums so the loop vectorises; float64 keeps the result far
  // more precise than the float32 GEMM it corrects, whatever the order.
  double s[4] = {0, 0, 0, 0};
  int64_t i = 0;
  for (; i + 4 <= n; i += 4) {
    for (int k = 0; k < 4; ++k) s[k] += static_cast<double>(a[i + k]) * static_cast<double>(b[i + k]);
  }
  for (; i < n; ++i) s[0] += static_cast<double>(a[i]) * static_cast<double>(b[i]);
  return (s[0] + s[1]) + (s[2] + s[3]);
}

#if defined(__x86_64__)
// The same polynomial as exp_nonpositive, eight lanes at a time.
__attribute__((target("avx2,fma"))) float exp_sums_avx2(const float* z, int64_t n, float m, ExpSums& sums) {
  const __m256 vm = _mm256_set1_ps(m), lo = _mm256_set1_ps(-87.0f), log2e = _mm256_set1_ps(1.44269504088896341f);
  const __m256 ln2_hi = _mm256_set1_ps(0.693359375f), ln2_lo = _mm256_set1_ps(-2.12194440e-4f);
  const __m256 c0 = _mm256_set1_ps(1.9875691500e-4f), c1 = _mm256_set1_ps(1.3981999507e-3f),
               c2 = _mm256_set1_ps(8.3334519073e-3f), c3 = _mm256_set1_ps(4.1665795894e-2f),
               c4 = _mm256_set1_ps(1.6666665459e-1f), c5 = _mm256_set1_ps(5.0000001201e-1f),
               one = _mm256_set1_ps(1.0f);
  constexpr int64_t kRun = kExpSumRun;
  __m256 top = _mm256_set1_ps(-INFINITY);
  int64_t start = 0;
  // Runs of up to kRun logits, whole 8-lane steps only; the last few go to
  // the portable loop.
  for (int64_t run; (run = std::min(kRun, (n - start) / 8 * 8)) > 0; start += run) {
    __m256 s = _mm256_setzero_ps(), u = _mm256_setzero_ps(), w = _mm256_setzero_ps();
    for (int64_t i = start; i < start + run; i += 8) {
      const __m256 zi = _mm256_loadu_ps(z + i);
      top = _mm256_max_ps(top, zi);
      const __m256 shifted = _mm256_sub_ps(zi, vm);
      const __m256 x = _mm256_max_ps(shifted, lo);
      const __m256 k = _mm256_round_ps(_mm256_mul_ps(x, log2e), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      __m256 r = _mm256_fnmadd_ps(k, ln2_hi, x);
      r = _mm256_fnmadd_ps(k, ln2_lo, r);
      __m256 p = _mm256_fmadd_ps(c0, r, c1);
      p = _mm256_fmadd_ps(p, r, c2);
      p = _mm256_fmadd_ps(p, r, c3);
      p = _mm256_fmadd_ps(p, r, c4);
      p = _mm256_fmadd_ps(p, r, c5);
      p = _mm256_fmadd_ps(_mm256_mul_ps(p, r), r, _mm256_add_ps(r, one));
      const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(k), _mm256_set1_epi32(127)), 23);
      const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
      s = _mm256_add_ps(s, e);
      const __m256 es = _mm256_mul_ps(e, shifted);
      u = _mm256_add_ps(u, es);
      w = _mm256_fmadd_ps(es, shifted, w);
    }
    alignas(32) float sv[8], uv[8], wv[8];
    _mm256_store_ps(sv, s);
    _mm256_store_ps(uv, u);
    _mm256_store_ps(wv, w);
    for (int j = 0; j < 8; ++j) {
      sums.exp += sv[j];
      sums.shift += uv[j];
      sums.shift2 += wv[j];
    }
  }
  alignas(32) float tv[8];
  _mm256_store_ps(tv, top);
  const float rest = exp_sums_portable(z + start, n - start, m, sums);
  return std::max(rest, *std::max_element(tv, tv + 8));
}

// Four float64 lanes, four accumulators: 16 products in flight.
__attribute__((target("avx2,fma"))) double dot_f64_avx2(const float* a, const float* b, int64_t n) {
  __m256d s0 = _mm256_setzero_pd(), s1 = _mm256_setzero_pd(), s2 = _mm256_setzero_pd(), s3 = _mm256_setzero_pd();
  int64_t i = 0;
  for (; i + 16 <= n; i += 16) {
    s0 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i)), _mm256_cvtps_pd(_mm_loadu_ps(b + i)), s0);
    s1 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i + 4)), _mm256_cvtps_pd(_mm_loadu_ps(b + i + 4)), s1);
    s2 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i + 8)), _mm256_cvtps_pd(_mm_loadu_ps(b + i + 8)), s2);
    s3 = _mm256_fmadd_pd(_mm256_cvtps_pd(_mm_loadu_ps(a + i + 12)), _mm256_cvtps_pd(_mm_loadu_ps(b + i + 12)), s3);
  }
  alignas(32) double lanes[4];
  _mm256_store_pd(lanes, _mm256_add_pd(_mm256_add_pd(s0, s1), _mm256_add_pd(s2, s3)));
  return (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]) + dot_f64_portable(a + i, b + i, n - i);
}

const bool kHaveAvx2Fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif

}  // namespace

float exp_sums(const float* z, int64_t n, float m, ExpSums& sums) {
#if defined(__x86_64__)
  if (kHaveAvx2Fma) return exp_sums_avx2(z, n, m, sums);
#endif
  return exp_sums_portable(z, n, m, sums);
}

double dot_f64(const float* a, const float* b, int64_t n) {
#if defined(__x86_64__)
  if (kHaveAvx2Fma) return dot_f64_avx2(a, b, n);
#endif
  return dot_f64_portable(a, b, n);
}

namespace {

int64_t first_at_least_portable(const float* z, int64_t from, int64_t n, float threshold) {
  for (int64_t i = from; i < n; ++i) {
    if (z[i] >= threshold) return i;
  }
  return n;
}

#if defined(__x86_64__)
// 32 logits per step: four compares OR-ed into one mask, so the common case
// (nothing reaches the threshold) is four loads, four compares and a test.
// The portable loop's `any |= z >= t` did not vectorise and cost as much as
// the softmax's exp (perf, on the default model's map).
__attribute__((target("avx2"))) int64_t first_at_least_avx2(const float* z, int64_t from, int64_t n,
                                                            float threshold) {
  const __m256 t = _mm256_set1_ps(threshold);
  int64_t i = from;
  for (; i + 32 <= n; i += 32) {
    const __m256 a = _mm256_cmp_ps(_mm256_loadu_ps(z + i), t, _CMP_GE_OQ);
    const __m256 b = _mm256_cmp_ps(_mm256_loadu_ps(z + i + 8), t, _CMP_GE_OQ);
    const __m256 c = _mm256_cmp_ps(_mm256_loadu_ps(z + i + 16), t, _CMP_GE_OQ);
    const __m256 d = _mm256_cmp_ps(_mm256_loadu_ps(z + i + 24), t, _CMP_GE_OQ);
    if (_mm256_movemask_ps(_mm256_or_ps(_mm256_or_ps(a, b), _mm256_or_ps(c, d))) != 0) break;
  }
  return first_at_least_portable(z, i, n, threshold);
}
#endif

}  // namespace

int64_t first_at_least(const float* z, int64_t from, int64_t n, float threshold) {
#if defined(__x86_64__)
  if (kHaveAvx2Fma) return first_at_least_avx2(z, from, n, threshold);
#endif
  return first_at_least_portable(z, from, n, threshold);
}

}  // namespace neuronlens::cpu

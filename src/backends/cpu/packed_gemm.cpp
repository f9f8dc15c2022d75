#include "backends/cpu/packed_gemm.h"

#include <algorithm>
#include <cstdlib>
#include <new>

#if defined(__x86_64__)
#include <immintrin.h>
#endif

namespace neuronlens::cpu {
namespace {

// k per pass: a B panel chunk is at most 20 KiB. 320 rather than 256 lets
// Strassen's halves of d = 576 (288) go in one pass: 1-3% faster there
// (bench/packed_gemm_bench).
constexpr int64_t kMaxDepthChunk = 320;

// One 6 x 16 tile: c[r, j] (+)= sum_k a[k, r] * b[k, j] over kc steps, with
// a and b panel chunks ([kc][6] and [kc][16]). The first prefetch_lines
// 64-byte lines (16 floats each) at `prefetch` are pulled into L2 meanwhile.
using MicroKernel = void (*)(const float* a, const float* b, int64_t kc, float* c, int64_t ldc, bool accumulate,
                             const float* prefetch, int64_t prefetch_lines);

void micro_kernel_portable(const float* a, const float* b, int64_t kc, float* c, int64_t ldc, bool accumulate,
                           const float*, int64_t) {
  float acc[kPanelRowsA][kPanelRowsB] = {};
  for (int64_t k = 0; k < kc; ++k) {
    for (int64_t r = 0; r < kPanelRowsA; ++r) {
      for (int64_t j = 0; j < kPanelRowsB; ++j) acc[r][j] += a[k * kPanelRowsA + r] * b[k * kPanelRowsB + j];
    }
  }
  for (int64_t r = 0; r < kPanelRowsA; ++r) {
    for (int64_t j = 0; j < kPanelRowsB; ++j) c[r * ldc + j] = accumulate ? c[r * ldc + j] + acc[r][j] : acc[r][j];
  }
}

#if defined(__x86_64__)
// Writes (or adds) 16 accumulated logits to one row of C.
__attribute__((target("avx2,fma"), always_inline)) inline void store_tile_row(float* row, __m256 lo, __m256 hi,
                                                                              bool accumulate) {
  if (accumulate) {
    lo = _mm256_add_ps(lo, _mm256_loadu_ps(row));
    hi = _mm256_add_ps(hi, _mm256_loadu_ps(row + 8));
  }
  _mm256_storeu_ps(row, lo);
  _mm256_storeu_ps(row + 8, hi);
}

// Twelve accumulators (6 rows x 2 halves of 16 columns), two B loads and six
// broadcasts per k: 12 FMAs every step, enough to keep both FMA units busy
// (the usual AVX2 choice, as in BLIS's Haswell kernel).
__attribute__((target("avx2,fma"))) void micro_kernel_avx2(const float* a, const float* b, int64_t kc, float* c,
                                                           int64_t ldc, bool accumulate, const float* prefetch,
                                                           int64_t prefetch_lines) {
  // acc[r][h]: row r, columns 8h..8h+7. Fully unrolled, so the compiler
  // keeps all twelve in registers (the same code as twelve named variables:
  // 192 FMAs in the function, no spills, same speed).
  __m256 acc[kPanelRowsA][2];
#pragma GCC unroll 6
  for (int r = 0; r < kPanelRowsA; ++r) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
#pragma GCC unroll 4
  for (int64_t k = 0; k < kc; ++k) {
    if (k < prefetch_lines) _mm_prefetch(reinterpret_cast<const char*>(prefetch + k * kPanelRowsB), _MM_HINT_T1);
    const __m256 b0 = _mm256_load_ps(b + k * kPanelRowsB), b1 = _mm256_load_ps(b + k * kPanelRowsB + 8);
#pragma GCC unroll 6
    for (int r = 0; r < kPanelRowsA; ++r) {
      const __m256 x = _mm256_broadcast_ss(a + k * kPanelRowsA + r);
      acc[r][0] = _mm256_fmadd_ps(x, b0, acc[r][0]);
      acc[r][1] = _mm256_fmadd_ps(x, b1, acc[r][1]);
    }
  }
#pragma GCC unroll 6
  for (int r = 0; r < kPanelRowsA; ++r) store_tile_row(c + r * ldc, acc[r][0], acc[r][1], accumulate);
}

const bool kHaveAvx2Fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif

MicroKernel micro_kernel() {
#if defined(__x86_64__)
  if (kHaveAvx2Fma) return micro_kernel_avx2;
#endif
  return micro_kernel_portable;
}

}  // namespace

bool packed_gemm_is_fast() {
#if defined(__x86_64__)
  return kHaveAvx2Fma;
#else
  return false;
#endif
}

void AlignedFloats::Free::operator()(float* p) const { std::free(p); }

void AlignedFloats::resize(int64_t n) {
  if (n <= capacity_) return;
  const auto bytes = static_cast<size_t>((n * 4 + 63) / 64 * 64);
  auto* p = static_cast<float*>(std::aligned_alloc(64, bytes));
  if (!p) throw std::bad_alloc();
  data_.reset(p);
  capacity_ = n;
}

void RhsPanels::allocate(int64_t n, int64_t k) {
  k_ = k;
  const int64_t panels = (n + kPanelRowsB - 1) / kPanelRowsB;
  data_.resize(panels * k * kPanelRowsB);
  // The last panel's rows past n stay zero (they give zero logits).
  if (panels > 0) std::fill_n(data_.data() + (panels - 1) * k * kPanelRowsB, k * kPanelRowsB, 0.0f);
}

void RhsPanels::pack_rows(int64_t first, const float* b, int64_t count, int64_t ldb) {
  for (int64_t r = 0; r < count; ++r) {
    const int64_t row = first + r;
    float* dst = data_.data() + (row / kPanelRowsB) * k_ * kPanelRowsB + row % kPanelRowsB;
    const float* src = b + r * ldb;
    for (int64_t kk = 0; kk < k_; ++kk) dst[kk * kPanelRowsB] = src[kk];
  }
}

void RhsPanels::pack(const float* b, int64_t n, int64_t k, int64_t ldb) {
  allocate(n, k);
  const int64_t panels = (n + kPanelRowsB - 1) / kPanelRowsB;
#pragma omp parallel for schedule(static)
  for (int64_t p = 0; p < panels; ++p) {
    const int64_t first = p * kPanelRowsB;
    pack_rows(first, b + first * ldb, std::min(kPanelRowsB, n - first), ldb);
  }
}

void LhsPanels::pack(const float* a, int64_t m, int64_t k, int64_t lda) {
  m_ = m;
  k_ = k;
  const int64_t panels = padded_rows() / kPanelRowsA;
  data_.resize(panels * k * kPanelRowsA);
  float* out = data_.data();
  for (int64_t p = 0; p < panels; ++p) {
    float* dst = out + p * k * kPanelRowsA;
    for (int64_t r = 0; r < kPanelRowsA; ++r) {
      const int64_t row = p * kPanelRowsA + r;
      for (int64_t kk = 0; kk < k; ++kk) dst[kk * kPanelRowsA + r] = row < m ? a[row * lda + kk] : 0.0f;
    }
  }
}

void packed_product(const LhsPanels& a, const RhsPanels& b, int64_t col0, int64_t cols, float* c, int64_t ldc,
                    MicroKernelChoice choice) {
  static const MicroKernel fastest = micro_kernel();
  const MicroKernel kernel = choice == MicroKernelChoice::Portable ? micro_kernel_portable : fastest;
  const int64_t k = a.depth();
  const int64_t a_panels = a.padded_rows() / kPanelRowsA;
  const int64_t first_b = col0 / kPanelRowsB, b_panels = (cols + kPanelRowsB - 1) / kPanelRowsB;
  // Equal chunks of at most kMaxDepthChunk (576 -> 2 x 288).
  const int64_t chunks = (k + kMaxDepthChunk - 1) / kMaxDepthChunk;
  const int64_t chunk = (k + chunks - 1) / chunks;
  for (int64_t k0 = 0; k0 < k; k0 += chunk) {
    const int64_t kc = std::min(chunk, k - k0);
    for (int64_t jp = 0; jp < b_panels; ++jp) {
      const float* bp = b.panel(first_b + jp, k0);
      // The same chunk of the next panel (k columns further on), fetched
      // into L2 a share at a time by each of this panel's kernel calls:
      // fetching it all in the first call measured slower
      // (bench/packed_gemm_bench, 88 vs 92 GFLOP/s best of 12).
      const float* next = jp + 1 < b_panels ? b.panel(first_b + jp + 1, k0) : nullptr;
      const int64_t prefetch_share = (kc + a_panels - 1) / a_panels;
      for (int64_t ip = 0; ip < a_panels; ++ip) {
        const int64_t from = std::min(kc, ip * prefetch_share);
        kernel(a.panel(ip, k0), bp, kc, c + ip * kPanelRowsA * ldc + jp * kPanelRowsB, ldc, k0 > 0,
               next ? next + from * kPanelRowsB : nullptr, next ? std::min(prefetch_share, kc - from) : 0);
      }
    }
  }
}

}  // namespace neuronlens::cpu

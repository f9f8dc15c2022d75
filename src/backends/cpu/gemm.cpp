#include "backends/cpu/gemm.h"

#include <cblas.h>

#include <chrono>
#include <random>
#include <vector>

namespace neuronlens::cpu {

namespace {

std::shared_mutex& blas_lock() {
  static std::shared_mutex lock;
  return lock;
}

void sgemm_abt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
               int64_t ldc, bool accumulate) {
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), 1.0f, a, static_cast<blasint>(lda), b, static_cast<blasint>(ldb),
              accumulate ? 1.0f : 0.0f, c, static_cast<blasint>(ldc));
}

}  // namespace

void gemm_abt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
              int64_t ldc, bool accumulate) {
  const std::shared_lock<std::shared_mutex> shared(blas_lock());
  sgemm_abt(m, n, k, a, lda, b, ldb, c, ldc, accumulate);
}

std::shared_lock<std::shared_mutex> shared_blas_lock() { return std::shared_lock<std::shared_mutex>(blas_lock()); }

void gemv(int64_t rows, int64_t cols, const float* w, const float* x, float* y) {
  const std::shared_lock<std::shared_mutex> shared(blas_lock());
  cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(rows), static_cast<blasint>(cols), 1.0f, w,
              static_cast<blasint>(cols), x, 1, 0.0f, y, 1);
}

int blas_threads_for_a_call() {
  const std::shared_lock<std::shared_mutex> shared(blas_lock());
  return openblas_get_num_threads();
}

OneThreadBlas::OneThreadBlas() : lock_(blas_lock()), previous_(openblas_get_num_threads()) {
  openblas_set_num_threads(1);
}

OneThreadBlas::~OneThreadBlas() { openblas_set_num_threads(previous_); }

void OneThreadBlas::gemm_abt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b,
                             int64_t ldb, float* c, int64_t ldc) const {
  sgemm_abt(m, n, k, a, lda, b, ldb, c, ldc, false);
}

double measure_gemm_gflops(int64_t m, int64_t n, int64_t k) {
  std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(n * k)), c(static_cast<size_t>(m * n));
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& x : a) x = dist(rng);
  for (float& x : b) x = dist(rng);
  gemm_abt(m, n, k, a.data(), k, b.data(), k, c.data(), n);  // warm-up: threads, caches
  using clock = std::chrono::steady_clock;
  int runs = 0;
  const auto start = clock::now();
  double seconds = 0;
  do {
    gemm_abt(m, n, k, a.data(), k, b.data(), k, c.data(), n);
    ++runs;
    seconds = std::chrono::duration<double>(clock::now() - start).count();
  } while (seconds < 0.1);
  return 2.0 * static_cast<double>(m) * static_cast<double>(n) * static_cast<double>(k) * runs / seconds / 1e9;
}

}  // namespace neuronlens::cpu

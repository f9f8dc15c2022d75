// Float32 matrix products on the CPU through BLAS (OpenBLAS).
//
// OpenBLAS (Debian's pthread build) has one process-wide thread count. The
// runtime's tile products run one BLAS product per OpenMP thread, which needs
// that count at 1 meanwhile; setting it and restoring it while another
// thread makes BLAS calls (the server's, a Python caller's) would run those
// on one thread, or, two such products racing, leave it at 1 for good. So
// every BLAS call here is serialised against that: an ordinary call holds a
// shared lock, a OneThreadBlas an exclusive one.
#pragma once

#include <cstdint>
#include <mutex>
#include <shared_mutex>

namespace neuronlens::cpu {

// C[m, n] = A[m, k] · B[n, k]^T (+ C if accumulate). Row-major, with leading
// dimensions lda/ldb/ldc in elements. This is the shape of "vectors times an
// LM head": A holds m vectors of size k, B holds n vocabulary rows of size k.
// On BLAS's own threads.
void gemm_abt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
              int64_t ldc, bool accumulate = false);
// y[rows] = W[rows, cols] · x[cols], W row-major. On BLAS's own threads.
void gemv(int64_t rows, int64_t cols, const float* w, const float* x, float* y);
// The shared lock an ordinary BLAS (or LAPACK) call holds; for calls made
// outside this file (lapack.cpp).
std::shared_lock<std::shared_mutex> shared_blas_lock();
// The thread count a BLAS call made now would run with (waits, as a call
// would, while a OneThreadBlas is alive).
int blas_threads_for_a_call();

// While alive, this thread holds BLAS exclusively with its thread count at 1,
// so that several of our own threads can each run a product (gemm_abt below,
// from any of them) without oversubscribing the cores. Other threads' BLAS
// calls wait until it goes. Do not call the free functions above while one
// is alive on this thread.
class OneThreadBlas {
 public:
  OneThreadBlas();
  ~OneThreadBlas();
  OneThreadBlas(const OneThreadBlas&) = delete;
  OneThreadBlas& operator=(const OneThreadBlas&) = delete;

  // As the free gemm_abt, on the calling thread only.
  void gemm_abt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
                int64_t ldc) const;

 private:
  std::unique_lock<std::shared_mutex> lock_;
  int previous_;
};

// Sustained float32 GEMM rate of this machine in GFLOP/s, measured with a
// short product of the given shape (about a tenth of a second).
double measure_gemm_gflops(int64_t m, int64_t n, int64_t k);

}  // namespace neuronlens::cpu

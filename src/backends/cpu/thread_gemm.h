// A float32 product on the calling thread, with the decode's own
// micro-kernels (logit_kernels.h) instead of BLAS. OpenBLAS (Debian's pthread
// build) has one process-wide thread count: running a BLAS product per
// OpenMP thread meant setting it to 1 and back, which races with any other
// thread's BLAS call in the process (the server's, a Python caller's) and can
// leave it at 1 for good. This touches no global state, so any number of
// threads can each run one at once.
#pragma once

#include <cstdint>

namespace neuronlens::cpu {

// C[m, n] = A[m, k] · B[n, k]^T, row-major with leading dimensions lda, ldb,
// ldc (elements). Written, not added. Runs on the calling thread only; its
// panels live in thread-local buffers that keep their capacity.
void gemm_abt_this_thread(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                          float* c, int64_t ldc);

}  // namespace neuronlens::cpu

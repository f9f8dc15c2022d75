// Float32 matrix products on the CPU through BLAS (OpenBLAS).
#pragma once

#include <cstdint>

namespace neuronlens::cpu {

// C[m, n] = A[m, k] · B[n, k]^T (+ C if accumulate). Row-major, with leading
// dimensions lda/ldb/ldc in elements. This is the shape of "vectors times an
// LM head": A holds m vectors of size k, B holds n vocabulary rows of size k.
void gemm_abt(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb, float* c,
              int64_t ldc, bool accumulate = false);

// Sustained float32 GEMM rate of this machine in GFLOP/s, measured with a
// short product of the given shape (about a tenth of a second).
double measure_gemm_gflops(int64_t m, int64_t n, int64_t k);

}  // namespace neuronlens::cpu

// Dense float64 linear algebra from OpenBLAS's LAPACK, for the small
// matrices of the head circuits (head_dim x head_dim), on one BLAS thread so
// that results do not depend on how many cores the process has.
#pragma once

#include <cstdint>
#include <vector>

#include "backends/cpu/gemm.h"

namespace neuronlens::cpu {

// Eigen-decomposition of the symmetric n x n matrix `a` (row-major; only
// its lower triangle is read): eigenvalues ascending into `values` [n], and
// `a` overwritten with the eigenvectors, one per row (row i belongs to
// values[i]). Throws Error (internal) if LAPACK reports a failure.
void symmetric_eigen(int64_t n, std::vector<double>& a, std::vector<double>& values);

// C[m, n] = A[m, k] · B[n, k]^T in float64, row-major and packed.
void gemm_abt_f64(int64_t m, int64_t n, int64_t k, const double* a, const double* b, double* c);

// The same two while the caller holds a OneThreadBlas (which the free ones
// would wait for): from any of several threads at once, each call on its
// own thread alone, so the results are those of the calls above.
void symmetric_eigen(const OneThreadBlas& held, int64_t n, std::vector<double>& a, std::vector<double>& values);
void gemm_abt_f64(const OneThreadBlas& held, int64_t m, int64_t n, int64_t k, const double* a, const double* b,
                  double* c);

}  // namespace neuronlens::cpu

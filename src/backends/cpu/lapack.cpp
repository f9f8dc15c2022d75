#include "backends/cpu/lapack.h"

#include <cblas.h>

#include <algorithm>
#include <cstddef>
#include <string>

#include "backends/cpu/gemm.h"
#include "neuronlens/error.h"

// LAPACK's Fortran entry point. The trailing lengths are the hidden
// arguments gfortran passes for CHARACTER arguments.
extern "C" void dsyevd_(const char* jobz, const char* uplo, const int* n, double* a, const int* lda, double* w,
                        double* work, const int* lwork, int* iwork, const int* liwork, int* info, size_t jobz_len,
                        size_t uplo_len);

namespace neuronlens::cpu {

void symmetric_eigen(int64_t n, std::vector<double>& a, std::vector<double>& values) {
  const OneThreadBlas one_thread;
  symmetric_eigen(one_thread, n, a, values);
}

void symmetric_eigen(const OneThreadBlas&, int64_t n, std::vector<double>& a, std::vector<double>& values) {
  const int order = static_cast<int>(n);
  values.assign(static_cast<size_t>(n), 0.0);
  // Row-major lower triangle = column-major upper triangle; the eigenvectors
  // come back as columns of a column-major matrix, i.e. as rows here. One
  // BLAS thread: the same bits whatever the cores (an MPI rank bound to one
  // core writes what a one-process map writes).
  const char jobz = 'V', uplo = 'U';
  int info = 0, lwork = -1, liwork = -1, iwork_size = 0;
  double work_size = 0;
  dsyevd_(&jobz, &uplo, &order, a.data(), &order, values.data(), &work_size, &lwork, &iwork_size, &liwork, &info, 1,
          1);
  if (info != 0) throw internal_error("dsyevd workspace query failed (info " + std::to_string(info) + ")");
  lwork = std::max(1, static_cast<int>(work_size));
  liwork = std::max(1, iwork_size);
  std::vector<double> work(static_cast<size_t>(lwork));
  std::vector<int> iwork(static_cast<size_t>(liwork));
  dsyevd_(&jobz, &uplo, &order, a.data(), &order, values.data(), work.data(), &lwork, iwork.data(), &liwork, &info, 1,
          1);
  if (info != 0) throw internal_error("dsyevd failed to converge (info " + std::to_string(info) + ")");
}

void gemm_abt_f64(int64_t m, int64_t n, int64_t k, const double* a, const double* b, double* c) {
  const OneThreadBlas one_thread;  // as above: the same bits whatever the cores
  gemm_abt_f64(one_thread, m, n, k, a, b, c);
}

void gemm_abt_f64(const OneThreadBlas&, int64_t m, int64_t n, int64_t k, const double* a, const double* b,
                  double* c) {
  cblas_dgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<blasint>(m), static_cast<blasint>(n),
              static_cast<blasint>(k), 1.0, a, static_cast<blasint>(k), b, static_cast<blasint>(k), 0.0, c,
              static_cast<blasint>(n));
}

}  // namespace neuronlens::cpu

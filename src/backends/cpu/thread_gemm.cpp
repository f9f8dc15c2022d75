#include "backends/cpu/thread_gemm.h"

#include <algorithm>

#include "backends/cpu/logit_kernels.h"
#include "backends/cpu/logit_panels.h"

namespace neuronlens::cpu {

void gemm_abt_this_thread(int64_t m, int64_t n, int64_t k, const float* a, int64_t lda, const float* b, int64_t ldb,
                          float* c, int64_t ldc) {
  if (m <= 0 || n <= 0) return;
  static const LogitKernels& kernels = logit_kernels(fastest_f32_kernel_set());
  thread_local LhsPanels lhs;
  thread_local RhsPanels rhs;
  thread_local AlignedBuffer<float> tile;  // [padded m][padded n]: the kernels write whole tiles
  lhs.pack_f32(a, m, k, lda, kernels.mr);
  rhs.pack_f32(b, n, k, ldb, kernels.nr, /*parallel=*/false);
  const int64_t ld = rhs.panels() * kernels.nr;
  tile.resize(lhs.padded_rows() * ld);
  kernels.product_f32(lhs.f32(), lhs.panels(), rhs.f32_panel(0), rhs.panels(), k, tile.data(), ld);
  for (int64_t i = 0; i < m; ++i) std::copy_n(tile.data() + i * ld, n, c + i * ldc);
}

}  // namespace neuronlens::cpu

// The runtime's per-thread float32 product (prompt processing over
// dequantised weight tiles, backends/cpu/thread_gemm.h) against OpenBLAS
// sgemm on one thread, the product it replaced, on the tile shapes the
// runtime uses: m prompt tokens x n weight rows x k inputs.
//   thread_gemm_bench [--repeats N]
// Prints each shape's GFLOP/s for both and ours / OpenBLAS (above 1: ours is
// faster).
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/logit_kernels.h"
#include "backends/cpu/thread_gemm.h"

namespace {

template <typename Product>
double best_seconds(int repeats, Product product) {
  double best = 1e30;
  for (int r = 0; r < repeats; ++r) {
    const auto start = std::chrono::steady_clock::now();
    product();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

}  // namespace

int main(int argc, char** argv) {
  int repeats = 20;
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], "--repeats") == 0) repeats = std::atoi(argv[i + 1]);
  }
  openblas_set_num_threads(1);  // the baseline as the runtime used it: one BLAS thread per OpenMP thread
  using neuronlens::cpu::fastest_f32_kernel_set;
  using neuronlens::cpu::logit_kernel_set_name;
  std::printf("kernels: %s; OpenBLAS: %s\n", std::string(logit_kernel_set_name(fastest_f32_kernel_set())).c_str(),
              openblas_get_config());
  std::printf("%6s %6s %6s %12s %12s %8s\n", "m", "n", "k", "ours GF/s", "BLAS GF/s", "ratio");
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  // Default model (d 576, FFN 1536) and an 8B-shaped layer (4096, 14336),
  // tiles as WeightMatrix cuts them (about 2 MiB of float32 per tile).
  const int64_t shapes[][3] = {{8, 768, 576},   {128, 768, 576},  {128, 904, 576}, {128, 232, 1536},
                               {32, 128, 4096}, {128, 128, 4096}, {128, 32, 14336}};
  for (const auto& s : shapes) {
    const int64_t m = s[0], n = s[1], k = s[2];
    std::vector<float> a(static_cast<size_t>(m * k)), b(static_cast<size_t>(n * k)), c(static_cast<size_t>(m * n));
    for (float& x : a) x = dist(rng);
    for (float& x : b) x = dist(rng);
    const double ours = best_seconds(
        repeats, [&] { neuronlens::cpu::gemm_abt_this_thread(m, n, k, a.data(), k, b.data(), k, c.data(), n); });
    const double blas =
        best_seconds(repeats, [&] { neuronlens::cpu::gemm_abt(m, n, k, a.data(), k, b.data(), k, c.data(), n); });
    const double flops = 2.0 * static_cast<double>(m * n * k);
    std::printf("%6ld %6ld %6ld %12.1f %12.1f %8.2f\n", static_cast<long>(m), static_cast<long>(n),
                static_cast<long>(k), flops / ours * 1e-9, flops / blas * 1e-9, blas / ours);
  }
  return 0;
}

// The decode's product alone, one thread: every kernel set this CPU runs
// (float32 and bf16 products over a head packed once, in blocks of 96
// vectors x tiles of 256 tokens as the decode makes them) against OpenBLAS
// sgemm of the same [n, d] x [V, d]^T, in turns, best and median of --runs.
//
// usage: logit_kernels_bench [--d 576] [--vocab 49152] [--n 768] [--runs 5]
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/logit_kernels.h"
#include "backends/cpu/logit_panels.h"

using namespace neuronlens;
using clock_type = std::chrono::steady_clock;
constexpr int64_t kBlock = 96, kTile = 256;  // the decode's block and tile sizes

namespace {

template <typename Fn>
double seconds(Fn fn) {
  const auto t = clock_type::now();
  fn();
  return std::chrono::duration<double>(clock_type::now() - t).count();
}

}  // namespace

int main(int argc, char** argv) {
  int64_t d = 576, vocab = 49152, n = 768, runs = 5;
  for (int i = 1; i + 1 < argc; i += 2) {
    const int64_t value = std::stoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--d")) d = value;
    else if (!std::strcmp(argv[i], "--vocab")) vocab = value;
    else if (!std::strcmp(argv[i], "--n")) n = value;
    else if (!std::strcmp(argv[i], "--runs")) runs = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  openblas_set_num_threads(1);  // this process only: one thread for every contender
  std::mt19937 rng(7);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(n * d)), head(static_cast<size_t>(vocab * d));
  for (float& x : a) x = normal(rng);
  for (float& x : head) x = normal(rng) * 0.05f;
  const double gflop = 2.0 * static_cast<double>(n) * static_cast<double>(vocab) * static_cast<double>(d) / 1e9;

  std::vector<float> c_blas(static_cast<size_t>(kBlock * vocab));
  auto run_sgemm = [&] {
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, static_cast<int>(std::min(kBlock, n - i0)),
                  static_cast<int>(vocab), static_cast<int>(d), 1.0f, a.data() + i0 * d, static_cast<int>(d),
                  head.data(), static_cast<int>(d), 0.0f, c_blas.data(), static_cast<int>(vocab));
    }
  };
  struct Contender {
    std::string name;
    std::vector<double> times;
    std::function<void()> run;
  };
  std::vector<Contender> contenders;
  contenders.push_back({"openblas sgemm", {}, run_sgemm});
  std::vector<cpu::RhsPanels> heads;
  heads.reserve(16);
  std::vector<float> c(static_cast<size_t>(kBlock * kTile));
  for (cpu::LogitKernelSet set : cpu::all_logit_kernel_sets()) {
    if (!cpu::can_run(set)) {
      std::printf("skipped %s: needs %s\n", std::string(cpu::logit_kernel_set_name(set)).c_str(),
                  std::string(cpu::required_cpu_features(set)).c_str());
      continue;
    }
    if (set == cpu::LogitKernelSet::Portable8 || set == cpu::LogitKernelSet::Portable16) continue;  // far slower
    const cpu::LogitKernels& k = cpu::logit_kernels(set);
    for (bool bf16 : {false, true}) {
      heads.emplace_back();
      cpu::RhsPanels& packed = heads.back();
      if (bf16) packed.pack_bf16(head.data(), vocab, d, d, k.nr);
      else packed.pack_f32(head.data(), vocab, d, d, k.nr);
      auto run = [&k, &packed, &a, &c, bf16, n, d, vocab] {
        thread_local cpu::LhsPanels lhs;
        for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
          const int64_t m = std::min(kBlock, n - i0);
          if (bf16) lhs.pack_bf16(a.data() + i0 * d, m, d, d, k.mr);
          else lhs.pack_f32(a.data() + i0 * d, m, d, d, k.mr);
          for (int64_t v0 = 0; v0 < vocab; v0 += kTile) {
            const int64_t panels = (std::min(kTile, vocab - v0) + k.nr - 1) / k.nr;
            if (bf16) {
              k.product_bf16(lhs.bf16(), lhs.panels(), packed.bf16_panel(v0 / k.nr), panels, packed.depth(), c.data(),
                             kTile);
            } else {
              k.product_f32(lhs.f32(), lhs.panels(), packed.f32_panel(v0 / k.nr), panels, packed.depth(), c.data(),
                            kTile);
            }
          }
        }
      };
      contenders.push_back({std::string(k.name) + (bf16 ? (k.native_bf16 ? " bf16" : " bf16 (emulated)") : " fp32"),
                            {}, run});
    }
  }
  for (int64_t r = 0; r < runs; ++r) {
    for (Contender& x : contenders) x.times.push_back(seconds(x.run));
  }
  std::printf("[%lld, %lld] x [%lld, %lld]^T, one thread, %lld runs in turns: GFLOP/s best / median, time vs sgemm\n",
              static_cast<long long>(n), static_cast<long long>(d), static_cast<long long>(vocab),
              static_cast<long long>(d), static_cast<long long>(runs));
  std::sort(contenders[0].times.begin(), contenders[0].times.end());
  const double sgemm_best = contenders[0].times[0];
  for (Contender& x : contenders) {
    std::sort(x.times.begin(), x.times.end());
    const double best = x.times[0], median = x.times[x.times.size() / 2];
    std::printf("  %-24s %6.1f / %6.1f   %.3fx\n", x.name.c_str(), gflop / best, gflop / median, best / sgemm_best);
  }
  return 0;
}

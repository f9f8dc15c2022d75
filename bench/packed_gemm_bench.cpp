// The decode's product alone: our packed micro-kernel against OpenBLAS sgemm
// on the same vectors and LM-head-shaped matrix, single-threaded, taking
// turns, best and median of several runs (this machine's timings swing by
// ±10% from run to run, so single runs mislead).
//
// usage: packed_gemm_bench [--d 576] [--vocab 49152] [--vectors 768] [--runs 8]
//                          [--strassen-block 192] [--strassen-tile 512]
//   packed: blocks of 96 vectors x tiles of 256 tokens into an L2-sized C,
//           as the decode runs it (head packed once, outside the timing)
//   packed strassen: blocks of 192 vectors x tiles of 512 tokens (the
//           decode's sizes; the options try others), seven products and C's
//           rows combined, as the decode does before folding them
//   sgemm:  the same vectors x [4096-token tile, d]^T per call, C written
//           out (what the Gemm product does per tile)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "backends/cpu/gemm.h"
#include "backends/cpu/packed_gemm.h"
#include "backends/cpu/strassen.h"

using namespace neuronlens;
using clock_type = std::chrono::steady_clock;

int main(int argc, char** argv) {
  int64_t d = 576, vocab = 49152, n = 768, runs = 8, strassen_block = 192, strassen_tile = 512;
  for (int i = 1; i + 1 < argc; i += 2) {
    const int64_t value = std::atoll(argv[i + 1]);
    if (!std::strcmp(argv[i], "--d")) d = value;
    else if (!std::strcmp(argv[i], "--vocab")) vocab = value;
    else if (!std::strcmp(argv[i], "--vectors")) n = value;
    else if (!std::strcmp(argv[i], "--runs")) runs = value;
    else if (!std::strcmp(argv[i], "--strassen-block")) strassen_block = value;
    else if (!std::strcmp(argv[i], "--strassen-tile")) strassen_tile = value;
    else {
      std::fprintf(stderr, "unknown option %s\n", argv[i]);
      return 2;
    }
  }
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<float> a(static_cast<size_t>(n * d)), head(static_cast<size_t>(vocab * d));
  for (float& x : a) x = dist(rng);
  for (float& x : head) x = dist(rng);
  cpu::RhsPanels packed_head;
  packed_head.pack(head.data(), vocab, d, d);
  const cpu::SingleThreadedBlas single_threaded;

  constexpr int64_t kBlock = 96, kTile = 256, kGemmTile = 4096;
  cpu::LhsPanels panels;
  std::vector<float> c_block(static_cast<size_t>((kBlock + 6) * kTile)), c_gemm(static_cast<size_t>(n * kGemmTile));
  double sink = 0;
  auto run_packed = [&] {
    for (int64_t i0 = 0; i0 < n; i0 += kBlock) {
      panels.pack(a.data() + i0 * d, std::min(kBlock, n - i0), d, d);
      for (int64_t v0 = 0; v0 < vocab; v0 += kTile) {
        cpu::packed_product(panels, packed_head, v0, std::min(kTile, vocab - v0), c_block.data(), kTile);
        sink += c_block[0];
      }
    }
  };
  cpu::PackedStrassenRhs strassen_head;
  strassen_head.prepare(head.data(), vocab, d, strassen_tile);
  cpu::StrassenLhs lhs;
  cpu::PackedStrassenLhs packed_lhs;
  cpu::StrassenProducts products;
  std::vector<float> upper(static_cast<size_t>(strassen_tile)), lower(static_cast<size_t>(strassen_tile));
  auto run_strassen = [&] {
    for (int64_t i0 = 0; i0 < n; i0 += strassen_block) {
      lhs.prepare(a.data() + i0 * d, std::min(strassen_block, n - i0), d, d);
      packed_lhs.prepare(lhs);
      for (int64_t t = 0; t < strassen_head.tiles(); ++t) {
        products.compute(packed_lhs, strassen_head, t);
        for (int64_t i = 0; i < lhs.half_rows(); ++i) products.rows(i, upper.data(), lower.data());
        sink += upper[0];
      }
    }
  };
  auto run_sgemm = [&] {
    for (int64_t v0 = 0; v0 < vocab; v0 += kGemmTile) {
      const int64_t cols = std::min(kGemmTile, vocab - v0);
      cpu::gemm_abt(n, cols, d, a.data(), d, head.data() + v0 * d, d, c_gemm.data(), cols);
      sink += c_gemm[0];
    }
  };
  auto seconds = [](auto&& f) {
    const auto t = clock_type::now();
    f();
    return std::chrono::duration<double>(clock_type::now() - t).count();
  };
  std::vector<double> packed_s, sgemm_s, strassen_s;
  for (int64_t r = 0; r < runs; ++r) {
    packed_s.push_back(seconds(run_packed));
    sgemm_s.push_back(seconds(run_sgemm));
    strassen_s.push_back(seconds(run_strassen));
  }
  std::sort(packed_s.begin(), packed_s.end());
  std::sort(sgemm_s.begin(), sgemm_s.end());
  std::sort(strassen_s.begin(), strassen_s.end());
  const double gflop = 2.0 * static_cast<double>(n) * static_cast<double>(vocab) * static_cast<double>(d) / 1e9;
  const size_t mid = packed_s.size() / 2;
  std::printf("d=%lld vocab=%lld vectors=%lld, %lld runs, 1 thread (GFLOP/s best / median)\n",
              static_cast<long long>(d), static_cast<long long>(vocab), static_cast<long long>(n),
              static_cast<long long>(runs));
  std::printf("  packed %.1f / %.1f\n  packed strassen %.1f / %.1f (effective: 2mnk over the time)\n"
              "  sgemm  %.1f / %.1f\n  sgemm/packed time: best %.3f, median %.3f\n"
              "  sgemm/packed-strassen time: best %.3f, median %.3f\n",
              gflop / packed_s[0], gflop / packed_s[mid], gflop / strassen_s[0], gflop / strassen_s[mid],
              gflop / sgemm_s[0], gflop / sgemm_s[mid], sgemm_s[0] / packed_s[0], sgemm_s[mid] / packed_s[mid],
              sgemm_s[0] / strassen_s[0], sgemm_s[mid] / strassen_s[mid]);
  return sink == 12345.0 ? 1 : 0;  // keeps the products from being optimised away
}

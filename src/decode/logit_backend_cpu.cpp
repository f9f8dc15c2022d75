// The CPU backend: the head packed once into panels (float32, or bf16 pairs),
// blocks of vectors packed as they come, each tile's logits made by the
// kernel set's micro-kernels (backends/cpu/logit_kernels.h) into a buffer
// that stays in L2 and handed to the sink from there, with its bound.
//
// The bound on a tile's logit z = fl(a' . b') against the exact a . b, for a
// vector a and a head row b, their bf16 roundings a' and b' (a' = a, b' = b
// in float32), d terms and u = 2^-24 (docs/precision.md):
//   a . b - a' . b' = a . (b - b') + (a - a') . b'
//   |fl(a' . b') - a' . b'| <= gamma(2d) |a'| |b'|,  gamma(n) = n u / (1 - n u)
// (at most d additions along k plus one per depth chunk), so
//   |z - a . b| <= |a| |b - b'| + |a - a'| |b'| + gamma(2d) |a'| |b'|
// by Cauchy-Schwarz, with each head norm replaced by its largest over the
// tile, plus 2^-21 (1 + |a'| |b'|) for the float comparisons the sink makes.
#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <mutex>
#include <string>
#include <vector>

#include "backends/cpu/logit_kernels.h"
#include "backends/cpu/logit_panels.h"
#include "decode/logit_backend.h"

namespace neuronlens::decode_detail {
namespace {

// Blocks of this many vectors sweep the whole vocabulary this many tokens at
// a time, so that a block's panels (96 x d floats) and its logits [96, 256]
// (96 KiB) stay in the core's L2 while they are made and folded. 96 is a
// multiple of both tile heights (6 and 12), 256 of both tile widths.
constexpr int64_t kBlockVectors = 96;
constexpr int64_t kTileTokens = 256;

double gamma_of(int64_t n) {
  const double nu = static_cast<double>(n) * std::ldexp(1.0, -24);
  return nu / (1 - nu);
}
const double kComparisonSlack = std::ldexp(1.0, -21);

// Rounds a double bound up to the next float.
float bound_as_float(double b) {
  const auto f = static_cast<float>(b);
  return static_cast<double>(f) >= b ? f : std::nextafter(f, INFINITY);
}

// Largest norms over each tile of kTileTokens head rows: |b| of the float32
// rows, and for bf16 |b'| and |b - b'| of their roundings.
struct TileNorms {
  std::vector<double> row;       // max |b|
  std::vector<double> rounded;   // max |b'|
  std::vector<double> rounding;  // max |b - b'|
};

TileNorms tile_norms(const LmHead& head, bool bf16) {
  const int64_t tiles = (head.vocab + kTileTokens - 1) / kTileTokens;
  TileNorms n{std::vector<double>(static_cast<size_t>(tiles)), std::vector<double>(static_cast<size_t>(tiles)),
              std::vector<double>(static_cast<size_t>(tiles))};
#pragma omp parallel for schedule(dynamic)
  for (int64_t t = 0; t < tiles; ++t) {
    double row = 0, rounded = 0, rounding = 0;
    for (int64_t j = t * kTileTokens; j < std::min(head.vocab, (t + 1) * kTileTokens); ++j) {
      const float* b = head.rows + j * head.d;
      double s = 0, s_rounded = 0, s_rounding = 0;
      for (int64_t k = 0; k < head.d; ++k) {
        s += static_cast<double>(b[k]) * b[k];
        if (bf16) {
          const double r = cpu::from_bf16(cpu::to_bf16(b[k]));
          s_rounded += r * r;
          s_rounding += (b[k] - r) * (b[k] - r);
        }
      }
      row = std::max(row, std::sqrt(s));
      rounded = std::max(rounded, bf16 ? std::sqrt(s_rounded) : std::sqrt(s));
      rounding = std::max(rounding, std::sqrt(s_rounding));
    }
    n.row[static_cast<size_t>(t)] = row;
    n.rounded[static_cast<size_t>(t)] = rounded;
    n.rounding[static_cast<size_t>(t)] = rounding;
  }
  return n;
}

// The norms of one vector that its bounds take: |a|, |a'| and |a - a'|.
struct VectorNorms {
  double exact = 0, rounded = 0, rounding = 0;
};

VectorNorms vector_norms(const float* a, int64_t d, bool bf16) {
  double s = 0, s_rounded = 0, s_rounding = 0;
  for (int64_t k = 0; k < d; ++k) {
    s += static_cast<double>(a[k]) * a[k];
    if (bf16) {
      const double r = cpu::from_bf16(cpu::to_bf16(a[k]));
      s_rounded += r * r;
      s_rounding += (a[k] - r) * (a[k] - r);
    }
  }
  return {std::sqrt(s), bf16 ? std::sqrt(s_rounded) : std::sqrt(s), std::sqrt(s_rounding)};
}

class CpuLogitBackend final : public LogitBackend {
 public:
  CpuLogitBackend(const LmHead& head, const cpu::LogitKernels& kernels, Precision precision)
      : head_(head),
        kernels_(kernels),
        bf16_(precision == Precision::Bf16),
        name_("cpu-" + std::string(kernels.name) + (bf16_ ? (kernels.native_bf16 ? "-bf16" : "-bf16emu") : "-fp32")),
        norms_(tile_norms(head, bf16_)),
        gamma_(gamma_of(2 * head.d) + kComparisonSlack) {}

  std::string_view name() const override { return name_; }
  Precision precision() const override { return bf16_ ? Precision::Bf16 : Precision::Exact; }
  int64_t block_vectors() const override { return kBlockVectors; }

  void prepare() const override {
    std::call_once(packed_once_, [this] {
      if (bf16_) {
        packed_.pack_bf16(head_.rows, head_.vocab, head_.d, head_.d, kernels_.nr);
      } else {
        packed_.pack_f32(head_.rows, head_.vocab, head_.d, head_.d, kernels_.nr);
      }
      prepared_.store(true, std::memory_order_release);
    });
  }

  std::string bound_definition() const override {
    if (!bf16_) {
      return "float32 products: |z - a.b| <= gamma(2d) |a| max|b| + 2^-21 (1 + |a| max|b|), gamma(n) = n 2^-24 / "
             "(1 - n 2^-24), max over 256-token tiles";
    }
    return "bf16 operands a', b', float32 accumulation: |z - a.b| <= |a| max|b - b'| + |a - a'| max|b'| + "
           "gamma(2d) |a'| max|b'| + 2^-21 (1 + |a'| max|b'|), gamma(n) = n 2^-24 / (1 - n 2^-24), max over "
           "256-token tiles";
  }

  void fold(const float* vectors, int64_t n, TileSink& sink) const override {
    const int64_t d = head_.d, V = head_.vocab, nr = kernels_.nr;
    thread_local cpu::LhsPanels lhs;
    thread_local cpu::RhsPanels tile_panels;  // one tile of the head, when it is not packed whole
    thread_local cpu::AlignedBuffer<float> logits;
    thread_local std::vector<VectorNorms> norms;
    const bool prepared = prepared_.load(std::memory_order_acquire);
    for (int64_t i0 = 0; i0 < n; i0 += kBlockVectors) {
      const int64_t m = std::min(kBlockVectors, n - i0);
      const float* block = vectors + i0 * d;
      if (bf16_) {
        lhs.pack_bf16(block, m, d, d, kernels_.mr);
      } else {
        lhs.pack_f32(block, m, d, d, kernels_.mr);
      }
      norms.resize(static_cast<size_t>(m));
      for (int64_t i = 0; i < m; ++i) norms[static_cast<size_t>(i)] = vector_norms(block + i * d, d, bf16_);
      logits.resize(lhs.padded_rows() * kTileTokens);  // [padded m, tile]
      for (int64_t v0 = 0; v0 < V; v0 += kTileTokens) {
        const int64_t cols = std::min(kTileTokens, V - v0);
        const int64_t panels = (cols + nr - 1) / nr;
        const cpu::RhsPanels* rhs = &packed_;
        int64_t first_panel = v0 / nr;
        if (!prepared) {
          if (bf16_) {
            tile_panels.pack_bf16(head_.rows + v0 * d, cols, d, d, nr);
          } else {
            tile_panels.pack_f32(head_.rows + v0 * d, cols, d, d, nr);
          }
          rhs = &tile_panels;
          first_panel = 0;
        }
        if (bf16_) {
          kernels_.product_bf16(lhs.bf16(), lhs.panels(), rhs->bf16_panel(first_panel), panels, rhs->depth(),
                                logits.data(), kTileTokens);
        } else {
          kernels_.product_f32(lhs.f32(), lhs.panels(), rhs->f32_panel(first_panel), panels, rhs->depth(),
                               logits.data(), kTileTokens);
        }
        const auto t = static_cast<size_t>(v0 / kTileTokens);
        for (int64_t i = 0; i < m; ++i) {
          const VectorNorms& a = norms[static_cast<size_t>(i)];
          const double magnitude = a.rounded * norms_.rounded[t];
          const double bound = a.exact * norms_.rounding[t] + a.rounding * norms_.rounded[t] + gamma_ * magnitude +
                               kComparisonSlack;
          sink.add(i0 + i, logits.data() + i * kTileTokens, cols, v0, bound_as_float(bound));
        }
      }
    }
  }

 private:
  LmHead head_;
  const cpu::LogitKernels& kernels_;
  bool bf16_;
  std::string name_;
  TileNorms norms_;
  double gamma_;  // gamma(2d) plus the comparison slack, per unit of |a'| max|b'|
  mutable std::once_flag packed_once_;
  mutable cpu::RhsPanels packed_;
  mutable std::atomic<bool> prepared_{false};
};

cpu::LogitKernelSet kernel_set_named(std::string_view name, bool* found) {
  for (cpu::LogitKernelSet set : cpu::all_logit_kernel_sets()) {
    if (cpu::logit_kernel_set_name(set) == name) {
      *found = true;
      return set;
    }
  }
  *found = false;
  return cpu::LogitKernelSet::Portable8;
}

}  // namespace

std::vector<DecodeBackendInfo> cpu_logit_backend_names() {
  std::vector<DecodeBackendInfo> names;
  for (cpu::LogitKernelSet set : cpu::all_logit_kernel_sets()) {
    const std::string kernels(cpu::logit_kernel_set_name(set));
    const bool runs = cpu::can_run(set);
    const std::string needs(cpu::required_cpu_features(set));
    if (set == cpu::LogitKernelSet::Avx512Bf16) {
      names.push_back({"cpu-" + kernels + "-bf16", Precision::Bf16, runs, needs});
      continue;
    }
    names.push_back({"cpu-" + kernels + "-fp32", Precision::Exact, runs, needs});
    names.push_back({"cpu-" + kernels + "-bf16emu", Precision::Bf16, runs, needs});
  }
  return names;
}

std::unique_ptr<LogitBackend> make_cpu_logit_backend(const LmHead& head, std::string_view kernel_set,
                                                     Precision precision) {
  bool found = false;
  const cpu::LogitKernelSet set = kernel_set_named(kernel_set, &found);
  if (!found) return nullptr;
  return std::make_unique<CpuLogitBackend>(head, cpu::logit_kernels(set), precision);
}

}  // namespace neuronlens::decode_detail

#include "backends/cpu/gated_activation.h"

#include <cmath>

namespace neuronlens::cpu {
namespace {

constexpr float kSqrt2OverPi = 0.7978845608028654f;

void silu_portable(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) gate[i] = gate[i] / (1.0f + std::exp(-gate[i])) * up[i];
}

void gelu_tanh_portable(float* gate, const float* up, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    const float u = kSqrt2OverPi * (g + 0.044715f * g * g * g);
    gate[i] = g / (1.0f + std::exp(-2.0f * u)) * up[i];
  }
}

}  // namespace

void gated_product(Gate gate_kind, float* gate, const float* up, int64_t n, KernelPath path) {
  require_path(path, "gated_product");
#if defined(__x86_64__)
  if (runs_avx2_kernels(path)) return avx2::gated_product(gate_kind, gate, up, n);
#endif
  if (gate_kind == Gate::GeluTanh) return gelu_tanh_portable(gate, up, n);
  silu_portable(gate, up, n);
}

}  // namespace neuronlens::cpu

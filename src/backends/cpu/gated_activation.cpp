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

void silu_gate(float* gate, const float* up, int64_t n, KernelPath path) {
  require_path(path, "silu_gate");
#if defined(__x86_64__)
  if (runs_avx2_kernels(path)) return avx2::silu_gate(gate, up, n);
#endif
  silu_portable(gate, up, n);
}

void gelu_tanh_gate(float* gate, const float* up, int64_t n, KernelPath path) {
  require_path(path, "gelu_tanh_gate");
#if defined(__x86_64__)
  if (runs_avx2_kernels(path)) return avx2::gelu_tanh_gate(gate, up, n);
#endif
  gelu_tanh_portable(gate, up, n);
}

}  // namespace neuronlens::cpu

// The MLP's gated activation, gate [n] = act(gate) * up [n], for the two
// activations the model families use, on the CPU's vector units. Both are
// written through one exponential:
//   SiLU:        g · σ(g)          = g / (1 + e^(-g))
//   GELU (tanh): ½ g (1 + tanh(u)) = g / (1 + e^(-2u)),  u = √(2/π) (g + 0.044715 g³)
// (½ (1 + tanh u) = σ(2u)), so a prompt's millions of activations cost one
// vector exp and one division each instead of a libm tanh or exp per value.
// Every path is within a few float32 ulps of the float64 values (the
// exponential's polynomial is Cephes' expf, within 1 ulp).
#pragma once

#include <cstdint>

#include "backends/cpu/kernel_path.h"

namespace neuronlens::cpu {

enum class Gate { Silu, GeluTanh };

void gated_product(Gate gate_kind, float* gate, const float* up, int64_t n, KernelPath path = best_kernel_path());

namespace avx2 {
void gated_product(Gate gate_kind, float* gate, const float* up, int64_t n);
}  // namespace avx2

}  // namespace neuronlens::cpu

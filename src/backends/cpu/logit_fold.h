// The per-row reductions of the fused decode, kept apart so they can be
// compiled for the CPU at hand (AVX2 + FMA where present, chosen at run time)
// while the rest of the library stays portable.
#pragma once

#include <cstdint>

namespace neuronlens::cpu {

// Largest of z[0..n).
float max_of(const float* z, int64_t n);

// sum_i exp(z_i - m) and sum_i exp(z_i - m) * (z_i - m), for z_i <= m,
// accumulated in double across runs of float partial sums.
void exp_sums(const float* z, int64_t n, float m, double& sum_exp, double& sum_shift);

// Index of the first z_i >= threshold at or after `from`, or n if none.
int64_t first_at_least(const float* z, int64_t from, int64_t n, float threshold);

}  // namespace neuronlens::cpu

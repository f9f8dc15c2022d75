// The per-row reductions of the fused decode, kept apart so they can be
// compiled for the CPU at hand (AVX2 + FMA where present, chosen at run time)
// while the rest of the library stays portable.
#pragma once

#include <cstdint>

namespace neuronlens::cpu {

// Largest of z[0..n).
float max_of(const float* z, int64_t n);

// Adds sum_i exp(z_i - m) to sum_exp and sum_i exp(z_i - m) * (z_i - m) to
// sum_shift, accumulated in double across runs of float partial sums, and
// returns max_i z_i. Any z_i - m <= 87 is fine (exp stays finite in float),
// so m may be a running maximum that this tile exceeds.
float exp_sums(const float* z, int64_t n, float m, double& sum_exp, double& sum_shift);

// sum_i a_i * b_i in float64.
double dot_f64(const float* a, const float* b, int64_t n);

// Index of the first z_i >= threshold at or after `from`, or n if none.
int64_t first_at_least(const float* z, int64_t from, int64_t n, float threshold);

}  // namespace neuronlens::cpu

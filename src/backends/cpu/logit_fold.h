// The per-row reductions of the fused decode, kept apart so they can be
// compiled for the CPU at hand (AVX2 + FMA where present, chosen at run time)
// while the rest of the library stays portable.
#pragma once

#include <cstdint>

namespace neuronlens::cpu {

// Largest of z[0..n).
float max_of(const float* z, int64_t n);

// Sums of a tile's softmax terms shifted by m: with x_i = z_i - m,
//   exp += sum_i e^{x_i},  shift += sum_i e^{x_i} x_i,  shift2 += sum_i e^{x_i} x_i^2
// (the last gives the logits' variance under the softmax, which bounds the
// entropy's error in a bf16 map: docs/precision.md).
struct ExpSums {
  double exp = 0, shift = 0, shift2 = 0;
};
// Largest length of the float32 partial sums exp_sums adds into double:
// their relative rounding error is at most (kExpSumRun + 3) * 2^-24.
constexpr int64_t kExpSumRun = 512;

// Adds tile z[0..n)'s sums to `sums`, accumulated in double across runs of
// float partial sums, and returns max_i z_i. Any z_i - m <= 87 is fine (exp
// stays finite in float), so m may be a running maximum that this tile
// exceeds.
float exp_sums(const float* z, int64_t n, float m, ExpSums& sums);

// sum_i a_i * b_i in float64.
double dot_f64(const float* a, const float* b, int64_t n);

// Index of the first z_i >= threshold at or after `from`, or n if none.
int64_t first_at_least(const float* z, int64_t from, int64_t n, float threshold);

}  // namespace neuronlens::cpu

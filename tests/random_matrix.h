// Random float32 matrices and float64 dot products: the inputs and the
// reference of the product tests (the decode's micro-kernels).
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

namespace neuronlens::testing {

// [rows, cols] row-major, entries ~ N(0, 1), reproducible from `seed`.
inline std::vector<float> random_matrix(int64_t rows, int64_t cols, uint32_t seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, 1.0f);
  std::vector<float> m(static_cast<size_t>(rows * cols));
  for (float& x : m) x = dist(rng);
  return m;
}

// sum_t a[t] * b[t] in float64, and sum_t |a[t] * b[t]|, which bounds the
// rounding error of any float32 evaluation of it.
struct ExactDot {
  double value = 0;
  double abs_sum = 0;
};
inline ExactDot exact_dot(const float* a, const float* b, int64_t n) {
  ExactDot r;
  for (int64_t t = 0; t < n; ++t) {
    const double p = static_cast<double>(a[t]) * static_cast<double>(b[t]);
    r.value += p;
    r.abs_sum += std::abs(p);
  }
  return r;
}

}  // namespace neuronlens::testing

// The softmax of one row of logits, in float64: what the tests that compare
// probabilities with a reference (llama.cpp, float32) compute from ours.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace neuronlens::testing {

inline std::vector<double> row_probabilities(const float* logits, int64_t v) {
  const double max = *std::max_element(logits, logits + v);
  std::vector<double> p(static_cast<size_t>(v));
  double sum = 0;
  for (int64_t i = 0; i < v; ++i) sum += p[static_cast<size_t>(i)] = std::exp(double(logits[i]) - max);
  for (double& x : p) x /= sum;
  return p;
}

}  // namespace neuronlens::testing

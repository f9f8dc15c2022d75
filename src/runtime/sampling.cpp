// Token sampling; the algorithm is described in include/neuronlens/sampling.h.
#include "neuronlens/sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "neuronlens/error.h"

namespace neuronlens {

int32_t argmax_token(std::span<const float> logits) {
  if (logits.empty()) throw bad_input("cannot choose a token from an empty row of logits");
  // max_element returns the first of equal maxima: the lowest id.
  return static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
}

std::vector<double> softmax_probabilities(std::span<const float> logits) {
  if (logits.empty()) throw bad_input("cannot take the softmax of an empty row of logits");
  const double top = *std::max_element(logits.begin(), logits.end());
  std::vector<double> p(logits.size());
  double total = 0;
  for (size_t i = 0; i < p.size(); ++i) total += p[i] = std::exp(static_cast<double>(logits[i]) - top);
  for (double& x : p) x /= total;
  return p;
}

std::vector<int32_t> top_token_ids(std::span<const double> p, int64_t k) {
  std::vector<int32_t> ids(p.size());
  std::iota(ids.begin(), ids.end(), 0);
  const auto n = static_cast<size_t>(std::clamp<int64_t>(k, 0, static_cast<int64_t>(ids.size())));
  auto before = [&](int32_t a, int32_t b) {
    const double pa = p[static_cast<size_t>(a)], pb = p[static_cast<size_t>(b)];
    return pa > pb || (pa == pb && a < b);
  };
  std::partial_sort(ids.begin(), ids.begin() + static_cast<std::ptrdiff_t>(n), ids.end(), before);
  ids.resize(n);
  return ids;
}

Sampler::Sampler(const SamplingOptions& options) : options_(options), rng_(options.seed) {
  if (!std::isfinite(options.temperature)) throw bad_input("temperature must be a finite number");
  if (options.top_k < 0) throw bad_input("top-k must be 0 (no limit) or more, got " + std::to_string(options.top_k));
  if (!(options.top_p > 0.0 && options.top_p <= 1.0)) {
    throw bad_input("top-p must be in (0, 1], got " + std::to_string(options.top_p));
  }
}

double Sampler::next_uniform() { return static_cast<double>(rng_() >> 11) * 0x1.0p-53; }

int32_t Sampler::sample(std::span<const float> logits) {
  if (logits.empty()) throw bad_input("cannot choose a token from an empty row of logits");
  if (greedy()) return argmax_token(logits);

  const auto n = static_cast<int64_t>(logits.size());
  std::vector<int32_t> order(logits.size());
  std::iota(order.begin(), order.end(), 0);
  auto before = [&](int32_t a, int32_t b) {
    return logits[static_cast<size_t>(a)] > logits[static_cast<size_t>(b)] ||
           (logits[static_cast<size_t>(a)] == logits[static_cast<size_t>(b)] && a < b);
  };
  const int64_t kept = options_.top_k > 0 ? std::min(options_.top_k, n) : n;
  std::partial_sort(order.begin(), order.begin() + kept, order.end(), before);
  order.resize(static_cast<size_t>(kept));

  // Softmax over the kept candidates; order[0] holds the largest logit.
  std::vector<double> p(order.size());
  const double top = logits[static_cast<size_t>(order[0])];
  double total = 0;
  for (size_t i = 0; i < order.size(); ++i) {
    p[i] = std::exp((static_cast<double>(logits[static_cast<size_t>(order[i])]) - top) / options_.temperature);
    total += p[i];
  }
  size_t count = order.size();
  if (options_.top_p < 1.0) {
    double cumulative = 0;
    for (size_t i = 0; i < order.size(); ++i) {
      cumulative += p[i] / total;
      if (cumulative >= options_.top_p) {
        count = i + 1;
        break;
      }
    }
  }
  const double kept_total = std::accumulate(p.begin(), p.begin() + static_cast<std::ptrdiff_t>(count), 0.0);
  const double u = next_uniform();
  double running = 0;
  for (size_t i = 0; i < count; ++i) {
    running += p[i] / kept_total;
    if (running > u) return order[i];
  }
  return order[count - 1];
}

}  // namespace neuronlens

// Choosing the next token from a row of logits: greedy, or a seeded random
// draw after temperature, top-k and top-p (nucleus) filtering.
//
// The draw is reproducible on every platform and standard library: the
// generator is std::mt19937_64 (whose output sequence the C++ standard fixes)
// seeded with `seed`, and each draw takes one 64-bit output r and uses
// u = (r >> 11) * 2^-53, a double in [0, 1). (std::uniform_real_distribution
// is not used: its algorithm differs between libraries.)
//
// sample(), with temperature T > 0:
//   1. candidates = every token, ordered by logit descending, ties by id ascending;
//   2. top_k > 0: keep the first top_k;
//   3. p_i = softmax(logit_i / T) over the kept candidates, in double;
//   4. top_p < 1: keep the shortest prefix whose cumulative p reaches top_p
//      (at least one token);
//   5. walk the kept candidates accumulating p_i / sum(kept p) and return the
//      first whose running total exceeds u (the last one if rounding leaves
//      the total below u).
// T <= 0 is greedy: the argmax, lowest id on ties, and draws nothing.
#pragma once

#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace neuronlens {

struct SamplingOptions {
  double temperature = 0.0;  // <= 0: greedy
  int64_t top_k = 0;         // 0: no limit
  double top_p = 1.0;        // 1: no limit; must be in (0, 1]
  uint64_t seed = 0;
};

// The id of the largest logit; the lowest id on ties. Throws Error if empty.
int32_t argmax_token(std::span<const float> logits);

// softmax(logits) in double. Throws Error if empty.
std::vector<double> softmax_probabilities(std::span<const float> logits);

// The ids of the `k` most probable tokens, most probable first, the lower id
// on ties (fewer when there are fewer tokens).
std::vector<int32_t> top_token_ids(std::span<const double> probabilities, int64_t k);

class Sampler {
 public:
  // Throws Error on a negative top_k, a top_p outside (0, 1], or a
  // non-finite temperature.
  explicit Sampler(const SamplingOptions& options);

  // The next token for `logits` [V]. Throws Error if `logits` is empty.
  int32_t sample(std::span<const float> logits);

  const SamplingOptions& options() const { return options_; }
  bool greedy() const { return options_.temperature <= 0.0; }

 private:
  SamplingOptions options_;
  std::mt19937_64 rng_;
  double next_uniform();
};

}  // namespace neuronlens

// The sink the backends fold logit tiles into (logit_backend.h): for each
// vector of a block, its running softmax over the bulk logits, the k best
// lower bounds seen (z - bound), and every token whose upper bound (z +
// bound) reaches the k-th best lower bound, the only tokens that can be in
// the exact top k. finish() re-scores those in float64 and derives the
// bounds on logsumexp and entropy (docs/precision.md).
#pragma once

#include <cstdint>
#include <vector>

#include "decode/logit_backend.h"
#include "decode/online_softmax.h"
#include "neuronlens/neuron.h"

namespace neuronlens::decode_detail {

class BoundedFold final : public TileSink {
 public:
  // n vectors; softcap > 0 caps every logit at cap * tanh(z / cap) (Gemma 2).
  BoundedFold(int64_t n, int top_k, double softcap);

  void add(int64_t i, const float* logits, int64_t cols, int64_t v0, float bound) override;

  // Vector i's decoding: its candidates re-scored against `head` in float64.
  // `vector` is the normalised vector [d] that was folded as row i.
  void finish(int64_t i, const float* vector, const LmHead& head, NeuronDecoding& out);

  // Tokens vector i kept as candidates so far (for tests and benchmarks).
  int64_t candidates(int64_t i) const { return static_cast<int64_t>(state_[static_cast<size_t>(i)].kept.size()); }

 private:
  struct Candidate {
    float logit;  // bulk value (soft-capped)
    int32_t id;
  };
  struct VectorState {
    OnlineSoftmax softmax;
    TopK lower;                   // the k largest z - bound
    std::vector<Candidate> kept;  // z + bound >= lower.threshold() when added
    size_t kept_after_prune = 0;
    float max_bound = 0;          // the largest bound of any tile: every bulk logit's
  };
  void prune(VectorState& v) const;

  int top_k_;
  double softcap_;
  std::vector<VectorState> state_;
};

}  // namespace neuronlens::decode_detail

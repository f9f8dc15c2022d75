#include "decode/bounded_fold.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "backends/cpu/logit_fold.h"

namespace neuronlens::decode_detail {
namespace {

double soft_capped(double z, double cap) { return cap > 0 ? cap * std::tanh(z / cap) : z; }

// Relative error of the float32 run sums behind sums.exp and sums.shift
// (each term's exp within 2 ulp, runs of kExpSumRun float additions), twice
// for safety: it bounds the sums' own evaluation error, apart from the
// logits' (docs/precision.md).
const double kSumRelativeError = 2.0 * static_cast<double>(cpu::kExpSumRun + 3) * std::ldexp(1.0, -24);

}  // namespace

BoundedFold::BoundedFold(int64_t n, int top_k, double softcap)
    : top_k_(top_k), softcap_(softcap), state_(static_cast<size_t>(n), VectorState{{}, TopK(top_k), {}, 0, 0}) {}

void BoundedFold::add(int64_t i, const float* row, int64_t cols, int64_t v0, float bound) {
  VectorState& v = state_[static_cast<size_t>(i)];
  if (softcap_ > 0) {
    // tanh is 1-Lipschitz, so a capped logit is within the same bound; its
    // float evaluation adds a few ulp of the cap.
    thread_local std::vector<float> capped;
    capped.resize(static_cast<size_t>(cols));
    const auto c = static_cast<float>(softcap_);
    for (int64_t j = 0; j < cols; ++j) capped[static_cast<size_t>(j)] = c * std::tanh(row[j] / c);
    row = capped.data();
    bound += static_cast<float>(std::ldexp(softcap_, -20));
  }
  v.softmax.add_tile(row, cols);
  v.max_bound = std::max(v.max_bound, bound);
  v.lower.add_tile_shifted(row, cols, static_cast<int32_t>(v0), bound);
  // Every token whose upper bound reaches the k-th best lower bound so far.
  const float reach = v.lower.threshold() - bound;
  for (int64_t j = cpu::first_at_least(row, 0, cols, reach); j < cols; j = cpu::first_at_least(row, j + 1, cols, reach)) {
    v.kept.push_back({row[j], static_cast<int32_t>(v0 + j)});
  }
  if (v.kept.size() > 2 * v.kept_after_prune + 256) prune(v);
}

void BoundedFold::prune(VectorState& v) const {
  // The threshold only rises, so a token below it now stays below it. The
  // bound is the vector's largest, so this keeps a superset of what the
  // per-tile bounds would.
  const float t = v.lower.threshold() - v.max_bound;
  std::erase_if(v.kept, [t](const Candidate& c) { return c.logit < t; });
  v.kept_after_prune = v.kept.size();
}

void BoundedFold::finish(int64_t i, const float* vector, const LmHead& head, NeuronDecoding& r) {
  VectorState& v = state_[static_cast<size_t>(i)];
  prune(v);
  OnlineSoftmax& sm = v.softmax;
  std::vector<std::pair<double, int32_t>> scored;
  scored.reserve(v.kept.size());
  double exact_share = 0;  // sum of e^{z - max} over the re-scored tokens
  for (const Candidate& c : v.kept) {
    const double z64 = soft_capped(cpu::dot_f64(vector, head.rows + static_cast<int64_t>(c.id) * head.d, head.d), softcap_);
    sm.replace_term(c.logit, z64);
    exact_share += sm.term(z64);
    scored.emplace_back(z64, c.id);
  }
  std::sort(scored.begin(), scored.end(), [](const auto& x, const auto& y) {
    return x.first > y.first || (x.first == y.first && x.second < y.second);
  });
  r.logsumexp = sm.logsumexp();
  r.entropy = sm.entropy();
  // The bounds (docs/precision.md): the tokens not re-scored hold a share
  // `rest` of the mass, each logit within E of its exact value.
  const double rest = std::clamp((sm.sums.exp - exact_share) / sm.sums.exp, 0.0, 1.0);
  const double e = v.max_bound;
  const double lse_error = std::log1p(rest * std::expm1(e)) + kSumRelativeError;
  const double mean_shift = sm.sums.shift / sm.sums.exp;
  r.logsumexp_error = lse_error;
  r.entropy_error = e * std::exp(e + lse_error) * std::sqrt(rest) * (std::sqrt(sm.variance()) + e) +
                    kSumRelativeError * (1 + 2 * std::abs(mean_shift));
  // The exact entropy lies in [0, log V] whatever the logits: never claim a
  // wider interval than that.
  const double log_v = std::log(static_cast<double>(head.vocab));
  r.entropy_error = std::min(r.entropy_error, std::max(r.entropy, log_v - r.entropy));
  scored.resize(std::min(scored.size(), static_cast<size_t>(top_k_)));
  r.top_ids.clear();
  r.top_logits.clear();
  r.topk_mass = 0;
  for (const auto& [logit, id] : scored) {
    r.top_ids.push_back(id);
    r.top_logits.push_back(logit);
    r.topk_mass += std::exp(logit - r.logsumexp);
  }
}

}  // namespace neuronlens::decode_detail

// The TARS targeting vector: the residual-stream direction whose decoding
// through the final norm and the LM head puts the most probability on a
// concept's tokens (include/neuronlens/model_edit.h, step 1).
//
// A direction t̂ [d] is decoded at unit RMS, x = sqrt(d) t̂, so its logits are
// z = W_U (g ⊙ x) (soft-capped where the family caps them) with W_U [V, d] the
// LM head and g [d] the final norm's weight; RMSNorm makes every scale of t̂
// decode alike (but for its epsilon, left out here). The objective is
// L = log sum_{c in C} softmax(z)_c, and
//   dL/dz_v = (q_v - p_v) * cap'(z_v),  q_v = p_v [v in C] / sum_C p,
//   dL/dt̂ = sqrt(d) g ⊙ (W_U^T dL/dz),
// climbed along the sphere with a step that halves whenever it fails to raise L.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "model/norm_weight.h"
#include "neuronlens/error.h"
#include "neuronlens/model_edit.h"

namespace neuronlens {
namespace {

struct HeadProblem {
  int64_t vocab = 0;
  int64_t d = 0;
  std::vector<float> head;   // [V, d] dequantised W_U
  std::vector<float> gain;   // [d] sqrt(d) * g
  double cap = 0;            // final soft-cap; 0 none
  std::vector<char> in_concept;  // [V]

  // z [V] for direction t [d], soft-capped.
  std::vector<double> logits(const std::vector<double>& t) const {
    std::vector<double> u(static_cast<size_t>(d));
    for (int64_t i = 0; i < d; ++i) u[i] = gain[i] * t[i];
    std::vector<double> z(static_cast<size_t>(vocab));
#pragma omp parallel for schedule(static)
    for (int64_t v = 0; v < vocab; ++v) {
      const float* row = head.data() + v * d;
      double s = 0;
      for (int64_t i = 0; i < d; ++i) s += static_cast<double>(row[i]) * u[i];
      z[v] = cap > 0 ? cap * std::tanh(s / cap) : s;
    }
    return z;
  }

  // Softmax of z in place; returns L = log sum_C p.
  double softmax_objective(std::vector<double>& z) const {
    const double m = *std::max_element(z.begin(), z.end());
    double total = 0;
    for (double& x : z) total += (x = std::exp(x - m));
    double concept_mass = 0;
    for (int64_t v = 0; v < vocab; ++v) {
      z[v] /= total;
      if (in_concept[v]) concept_mass += z[v];
    }
    return std::log(std::max(concept_mass, 1e-300));
  }

  // dL/dt [d] at t, given p = softmax(z(t)) and the uncapped-to-capped slope.
  std::vector<double> gradient(const std::vector<double>& p, const std::vector<double>& capped_z) const {
    double concept_mass = 0;
    for (int64_t v = 0; v < vocab; ++v) concept_mass += in_concept[v] ? p[v] : 0.0;
    std::vector<double> dz(static_cast<size_t>(vocab));
    for (int64_t v = 0; v < vocab; ++v) {
      const double q = in_concept[v] ? p[v] / concept_mass : 0.0;
      const double slope = cap > 0 ? 1.0 - (capped_z[v] / cap) * (capped_z[v] / cap) : 1.0;
      dz[v] = (q - p[v]) * slope;
    }
    std::vector<double> grad(static_cast<size_t>(d), 0.0);
#pragma omp parallel
    {
      std::vector<double> local(static_cast<size_t>(d), 0.0);
#pragma omp for schedule(static) nowait
      for (int64_t v = 0; v < vocab; ++v) {
        if (dz[v] == 0.0) continue;
        const float* row = head.data() + v * d;
        for (int64_t i = 0; i < d; ++i) local[i] += dz[v] * row[i];
      }
#pragma omp critical
      for (int64_t i = 0; i < d; ++i) grad[i] += local[i];
    }
    for (int64_t i = 0; i < d; ++i) grad[i] *= gain[i];
    return grad;
  }
};

void normalize(std::vector<double>& t) {
  double n = 0;
  for (double x : t) n += x * x;
  n = std::sqrt(n);
  if (n == 0 || !std::isfinite(n)) throw bad_input("the concept's targeting vector is zero (its tokens' LM head rows cancel)");
  for (double& x : t) x /= n;
}

struct Evaluation {
  double objective = 0;
  std::vector<double> p;         // [V]
  std::vector<double> capped_z;  // [V]
};

Evaluation evaluate(const HeadProblem& problem, const std::vector<double>& t) {
  Evaluation e;
  e.capped_z = problem.logits(t);
  e.p = e.capped_z;
  e.objective = problem.softmax_objective(e.p);
  return e;
}

}  // namespace

TargetingVector concept_targeting_vector(const Model& model, const std::vector<int32_t>& concept_ids, int refine_steps,
                                         int top) {
  const ModelConfig& c = model.config();
  if (concept_ids.empty()) throw bad_input("a targeting vector needs at least one concept token");
  HeadProblem problem;
  problem.vocab = model.lm_head().rows();
  problem.d = c.d_model;
  problem.cap = c.final_softcap;
  problem.in_concept.assign(static_cast<size_t>(problem.vocab), 0);
  for (int32_t id : concept_ids) {
    if (id < 0 || id >= problem.vocab) throw bad_input("concept token id " + std::to_string(id) + " is out of range");
    problem.in_concept[static_cast<size_t>(id)] = 1;
  }
  problem.head.resize(static_cast<size_t>(problem.vocab * problem.d));
  dequantize_rows(model.lm_head(), 0, problem.vocab, problem.head.data());
  const std::vector<float> g = applied_norm_weight(model, WeightKind::OutputNorm);
  problem.gain.resize(static_cast<size_t>(problem.d));
  const double root_d = std::sqrt(static_cast<double>(problem.d));
  for (int64_t i = 0; i < problem.d; ++i) problem.gain[i] = static_cast<float>(root_d * (g.empty() ? 1.0f : g[i]));

  // Start: g ⊙ (mean of the concept's rows - mean of all rows).
  std::vector<double> mean_all(static_cast<size_t>(problem.d), 0.0), mean_concept(static_cast<size_t>(problem.d), 0.0);
  for (int64_t v = 0; v < problem.vocab; ++v) {
    const float* row = problem.head.data() + v * problem.d;
    for (int64_t i = 0; i < problem.d; ++i) mean_all[i] += row[i];
  }
  int64_t n_concept = 0;
  for (int64_t v = 0; v < problem.vocab; ++v) {
    if (!problem.in_concept[v]) continue;
    ++n_concept;
    const float* row = problem.head.data() + v * problem.d;
    for (int64_t i = 0; i < problem.d; ++i) mean_concept[i] += row[i];
  }
  std::vector<double> t(static_cast<size_t>(problem.d));
  for (int64_t i = 0; i < problem.d; ++i) {
    t[i] = problem.gain[i] * (mean_concept[i] / static_cast<double>(n_concept) - mean_all[i] / static_cast<double>(problem.vocab));
  }
  normalize(t);

  TargetingVector out;
  Evaluation current = evaluate(problem, t);
  out.concept_prob_start = std::exp(current.objective);
  double step = 0.1;  // radians, roughly: the tangent step's length on the unit sphere
  for (int attempt = 0; out.steps < refine_steps && step > 1e-4 && attempt < 4 * refine_steps; ++attempt) {
    std::vector<double> grad = problem.gradient(current.p, current.capped_z);
    const double along = std::inner_product(grad.begin(), grad.end(), t.begin(), 0.0);
    double norm = 0;
    for (int64_t i = 0; i < problem.d; ++i) norm += (grad[i] -= along * t[i]) * grad[i];
    norm = std::sqrt(norm);
    if (norm < 1e-12) break;  // a stationary point
    std::vector<double> next(t);
    for (int64_t i = 0; i < problem.d; ++i) next[i] += step * grad[i] / norm;
    normalize(next);
    Evaluation tried = evaluate(problem, next);
    if (tried.objective > current.objective) {
      t = std::move(next);
      current = std::move(tried);
      ++out.steps;
      step *= 1.5;
    } else {
      step *= 0.5;
    }
  }
  out.concept_prob = std::exp(current.objective);
  out.direction.assign(t.begin(), t.end());
  std::vector<int32_t> order(static_cast<size_t>(problem.vocab));
  std::iota(order.begin(), order.end(), 0);
  const auto k = static_cast<size_t>(std::clamp<int64_t>(top, 0, problem.vocab));
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(k), order.end(),
                    [&](int32_t a, int32_t b) { return current.p[a] > current.p[b] || (current.p[a] == current.p[b] && a < b); });
  for (size_t i = 0; i < k; ++i) {
    out.top_ids.push_back(order[i]);
    out.top_probs.push_back(current.p[static_cast<size_t>(order[i])]);
  }
  return out;
}

}  // namespace neuronlens

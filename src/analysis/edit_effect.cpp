// Before/after measurements of a weight edit (include/neuronlens/edit_effect.h).
#include <algorithm>
#include <cmath>
#include <numeric>

#include "neuronlens/edit_effect.h"
#include "neuronlens/error.h"
#include "neuronlens/runtime.h"

namespace neuronlens {
namespace {

// log softmax of one row of logits [V], in float64.
std::vector<double> log_softmax(const float* logits, int64_t vocab) {
  const double m = *std::max_element(logits, logits + vocab);
  double total = 0;
  for (int64_t v = 0; v < vocab; ++v) total += std::exp(static_cast<double>(logits[v]) - m);
  const double log_total = m + std::log(total);
  std::vector<double> out(static_cast<size_t>(vocab));
  for (int64_t v = 0; v < vocab; ++v) out[v] = logits[v] - log_total;
  return out;
}

double concept_probability(Session& session, const std::vector<int32_t>& prompt, const std::vector<int32_t>& ids) {
  session.reset();
  const std::vector<float> logits = session.forward(prompt, LogitsFor::LastToken);
  session.reset();
  const std::vector<double> lp = log_softmax(logits.data(), static_cast<int64_t>(logits.size()));
  double p = 0;
  for (int32_t id : ids) p += std::exp(lp[static_cast<size_t>(id)]);
  return p;
}

}  // namespace

EditEffect measure_edit_effect(const Model& before, const Model& after, const std::vector<int32_t>& concept_ids,
                               const std::vector<std::vector<int32_t>>& prompts, const std::vector<int32_t>& neutral) {
  const ModelConfig& a = before.config();
  const ModelConfig& b = after.config();
  if (a.arch != b.arch || a.vocab_size != b.vocab_size || a.d_model != b.d_model || a.n_layers != b.n_layers) {
    throw bad_input("the edited model does not have the original's shape: " + before.path() + " vs " + after.path());
  }
  for (int32_t id : concept_ids) {
    if (id < 0 || id >= a.vocab_size) throw bad_input("concept token id " + std::to_string(id) + " is out of range");
  }
  // Float32 activations in both (WeightFormat::Exact, as patch and
  // attribute): with the default's 8-bit rounding, the two models' own
  // rounding noise, not the edit, would make most of a small neutral KL
  // (and an edited tensor may be F16 beside a K-quant original).
  const SessionOptions exact{WeightFormat::Exact};
  Session s_before(before, exact), s_after(after, exact);
  EditEffect out;
  for (const auto& prompt : prompts) {
    out.concept_before.push_back(concept_probability(s_before, prompt, concept_ids));
    out.concept_after.push_back(concept_probability(s_after, prompt, concept_ids));
  }
  if (neutral.empty()) return out;
  const auto vocab = a.vocab_size;
  s_before.reset();
  s_after.reset();
  const std::vector<float> lb = s_before.forward(neutral, LogitsFor::AllTokens);  // [n, V]
  const std::vector<float> la = s_after.forward(neutral, LogitsFor::AllTokens);
  s_before.reset();
  s_after.reset();
  for (size_t pos = 0; pos < neutral.size(); ++pos) {
    const std::vector<double> p = log_softmax(lb.data() + pos * vocab, vocab);
    const std::vector<double> q = log_softmax(la.data() + pos * vocab, vocab);
    double kl = 0;
    for (int64_t v = 0; v < vocab; ++v) kl += std::exp(p[v]) * (p[v] - q[v]);
    out.kl.push_back(std::max(kl, 0.0));
  }
  std::vector<double> sorted = out.kl;
  std::sort(sorted.begin(), sorted.end());
  out.kl_mean = std::accumulate(sorted.begin(), sorted.end(), 0.0) / static_cast<double>(sorted.size());
  const size_t n = sorted.size();
  out.kl_median = n % 2 ? sorted[n / 2] : 0.5 * (sorted[n / 2 - 1] + sorted[n / 2]);
  out.kl_max = sorted.back();
  return out;
}

}  // namespace neuronlens

// activation_search.h.
#include "neuronlens/activation_search.h"

#include <algorithm>
#include <cmath>
#include <unordered_set>

#include "neuronlens/error.h"
#include "neuronlens/runtime.h"

namespace neuronlens {

ActivationSearch find_by_activation(const Model& model, const Atlas& atlas, const ConceptTokens& concept_tokens,
                                    const std::vector<int64_t>& layers, int limit,
                                    const std::function<void(int64_t, int64_t)>& on_progress) {
  const std::optional<RecordInfo> info = atlas.record_info();
  if (!info || info->chunks_done == 0) {
    throw bad_input(atlas.path() + ": --by activation needs an activation record in the atlas (`neuronlens record`)");
  }
  if (limit < 1) throw bad_input("--limit must be at least 1");
  const ModelConfig& c = model.config();
  std::vector<int64_t> chosen = layers;
  if (chosen.empty()) {
    for (int64_t l = 0; l < c.n_layers; ++l) chosen.push_back(l);
  }
  const std::unordered_set<int32_t> wanted(concept_tokens.ids.begin(), concept_tokens.ids.end());
  // Which chunks hold the concept, and up to where they must run.
  struct Work {
    int64_t chunk;
    std::vector<int32_t> tokens;  // up to the last concept token
  };
  std::vector<Work> work;
  for (int64_t chunk = 0; chunk < info->chunks_done; ++chunk) {
    std::vector<int32_t> tokens = atlas.corpus_chunk(chunk);
    size_t last = 0;
    for (size_t t = 1; t < tokens.size(); ++t) {
      if (wanted.count(tokens[t])) last = t;
    }
    if (last == 0) continue;
    tokens.resize(last + 1);
    work.push_back({chunk, std::move(tokens)});
  }
  ActivationSearch result;
  if (work.empty()) {
    throw bad_input("'" + concept_tokens.concept_text + "' does not occur in the recorded corpus (" +
                    std::to_string(info->tokens_recorded) + " tokens)");
  }
  std::vector<std::vector<double>> sums(static_cast<size_t>(c.n_layers));
  for (int64_t l : chosen) sums[static_cast<size_t>(l)].assign(static_cast<size_t>(c.d_ffn), 0.0);
  Session session(model);
  const std::vector<int32_t>* current = nullptr;
  session.add_hook(HookPoint::MlpAct, kEveryLayer,
                   [&](int64_t layer, HookPoint, float* data, int64_t n, int64_t width, int64_t first) {
                     std::vector<double>& sum = sums[static_cast<size_t>(layer)];
                     if (sum.empty()) return;
                     for (int64_t t = 0; t < n; ++t) {
                       const int64_t position = first + t;
                       if (position < 1 || !wanted.count((*current)[static_cast<size_t>(position)])) continue;
                       const float* row = data + t * width;
                       for (int64_t j = 0; j < width; ++j) sum[static_cast<size_t>(j)] += row[j];
                     }
                   });
  for (const Work& w : work) {
    current = &w.tokens;
    session.reset();
    (void)session.forward(w.tokens, LogitsFor::LastToken);
    for (size_t t = 1; t < w.tokens.size(); ++t) result.positions += wanted.count(w.tokens[t]) ? 1 : 0;
    ++result.chunks_run;
    if (on_progress) on_progress(result.chunks_run, static_cast<int64_t>(work.size()));
  }
  for (int64_t l : chosen) {
    const std::vector<NeuronStats> stats = atlas.layer_stats(l);
    for (int64_t j = 0; j < c.d_ffn; ++j) {
      ActivationHit h;
      h.layer = l;
      h.index = j;
      h.mean = sums[static_cast<size_t>(l)][static_cast<size_t>(j)] / static_cast<double>(result.positions);
      if (static_cast<size_t>(j) < stats.size()) {
        h.corpus_mean = stats[static_cast<size_t>(j)].mean;
        h.corpus_std = stats[static_cast<size_t>(j)].std;
        h.z = h.corpus_std > 0 ? (h.mean - h.corpus_mean) / h.corpus_std : 0.0;
      }
      result.hits.push_back(h);
    }
  }
  const auto keep = std::min(result.hits.size(), static_cast<size_t>(limit));
  std::partial_sort(result.hits.begin(), result.hits.begin() + static_cast<std::ptrdiff_t>(keep), result.hits.end(),
                    [](const ActivationHit& a, const ActivationHit& b) {
                      if (a.z != b.z) return a.z > b.z;
                      if (a.mean != b.mean) return a.mean > b.mean;
                      return a.layer != b.layer ? a.layer < b.layer : a.index < b.index;
                    });
  result.hits.resize(keep);
  return result;
}

}  // namespace neuronlens

// Concept search: score = the probability a neuron's decoded distribution
// gives the concept's tokens, p = sum_t exp(z_t - logsumexp), exact over all
// neurons of the chosen kinds and layers.
#include "neuronlens/concept_search.h"

#include "analysis/concept_rank.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>
#include <tuple>

#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"

namespace neuronlens {

std::optional<int32_t> find_token_by_text(const Vocabulary& vocab, const std::string& text) {
  std::string raw;
  if (vocab.encoding() == VocabEncoding::ByteLevelBpe) {
    raw = byte_level_encode(text);
  } else {
    for (char c : text) raw += c == ' ' ? std::string("\xE2\x96\x81") : std::string(1, c);  // '▁'
  }
  const std::optional<int64_t> id = vocab.find_raw(raw);
  if (!id) return std::nullopt;
  const TokenType type = vocab.token(*id).type;
  if (type != TokenType::Normal && type != TokenType::UserDefined && type != TokenType::Undefined) return std::nullopt;
  return static_cast<int32_t>(*id);
}

ConceptTokens expand_concept(const Vocabulary& vocab, const std::string& concept_text, bool exact) {
  if (concept_text.empty()) throw bad_input("empty concept");
  ConceptTokens out;
  out.concept_text = concept_text;
  std::vector<std::string> variants{concept_text};
  if (!exact) {
    std::string base = concept_text;
    while (!base.empty() && base.front() == ' ') base.erase(base.begin());
    std::string lower = base, capital = base;
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    capital = lower;
    if (!capital.empty()) capital[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(capital[0])));
    std::vector<std::string> words{base, lower, capital};
    for (const std::string& w : std::vector<std::string>(words)) {
      if (w.empty()) continue;
      const char last = w.back();
      const bool sibilant = last == 's' || last == 'x' || last == 'z' || w.ends_with("ch") || w.ends_with("sh");
      words.push_back(w + (sibilant ? "es" : "s"));
    }
    variants.clear();
    for (const std::string& w : words) {
      variants.push_back(w);
      variants.push_back(" " + w);
    }
  }
  std::set<std::string> seen;
  for (const std::string& v : variants) {
    if (v.empty() || !seen.insert(v).second) continue;
    if (std::optional<int32_t> id = find_token_by_text(vocab, v)) {
      if (std::find(out.ids.begin(), out.ids.end(), *id) == out.ids.end()) {
        out.ids.push_back(*id);
        out.variants.push_back(v);
      }
    } else {
      out.not_single.push_back(v);
    }
  }
  if (out.ids.empty()) {
    throw bad_input("concept '" + concept_text + "' is not a single token in this vocabulary" +
                    (exact ? std::string() : " in any of its variants (leading space, capitalised, plural)") +
                    "; try a shorter word or one of its pieces");
  }
  return out;
}

RankBy rank_by_from_name(const std::string& name) {
  if (name == "prob") return RankBy::Probability;
  if (name == "logit") return RankBy::Logit;
  if (name == "rank") return RankBy::Rank;
  throw bad_input("--by: '" + name + "' is not a ranking (expected prob, logit or rank)");
}

namespace {

bool ranks_before(const ConceptHit& a, const ConceptHit& b, RankBy by) {
  return ranks_before(a, b, by, [](const ConceptHit& h) { return std::tie(h.layer, h.kind, h.index); });
}

void fill_top_from_decoding(ConceptHit& hit, const NeuronDecoding& r, int show_top) {
  hit.top_ids.clear();
  hit.top_probs.clear();
  for (size_t i = 0; i < r.top_ids.size() && static_cast<int>(i) < show_top; ++i) {
    hit.top_ids.push_back(r.top_ids[i]);
    hit.top_probs.push_back(std::exp(r.top_logits[i] - r.logsumexp));
  }
}

}  // namespace

std::vector<ConceptHit> find_concept(const Model& model, const LmHeadDecoder& decoder, const Atlas* atlas,
                                     const ConceptTokens& concept_tokens, const FindOptions& options,
                                     const std::function<void(int64_t, int64_t)>& on_progress) {
  const ModelConfig& c = model.config();
  if (atlas != nullptr) {
    // The atlas's logsumexp values are only valid for the decoder's own norm
    // and model shape; mixing them gives silently wrong probabilities.
    const AtlasSettings& s = atlas->settings();
    if (s.norm != decoder.settings().norm) {
      throw bad_input(atlas->path() + ": the atlas was made with --norm " + std::string(norm_mode_name(s.norm)) +
                      ", not " + std::string(norm_mode_name(decoder.settings().norm)));
    }
    if (s.read_norm != decoder.settings().read_norm) {
      throw bad_input(atlas->path() + ": the atlas was made with --read-norm " +
                      std::string(read_norm_name(s.read_norm)) + ", not " +
                      std::string(read_norm_name(decoder.settings().read_norm)));
    }
    if (s.n_layers != c.n_layers || s.d_ffn != c.d_ffn || s.vocab_size != c.vocab_size) {
      throw bad_input(atlas->path() + ": the atlas's shape (layers, FFN width, vocabulary) is not this model's");
    }
  }
  const int64_t F = c.d_ffn, d = c.d_model;
  const auto m = static_cast<int64_t>(concept_tokens.ids.size());
  std::vector<int64_t> layers = options.layers.empty() ? parse_layer_list("all", c.n_layers) : options.layers;

  struct Candidate {
    ConceptHit hit;
    std::vector<float> vector;  // normalised [d], to decode the winners at the end
  };
  std::vector<Candidate> best;
  std::vector<float> vectors;
  std::vector<double> z(static_cast<size_t>(F * m));
  const int64_t steps = static_cast<int64_t>(layers.size() * options.kinds.size());
  int64_t step = 0;
  for (int64_t layer : layers) {
    for (VectorKind kind : options.kinds) {
      load_neuron_vectors(model, kind, layer, vectors, decoder.settings().read_norm);
      decoder.normalize(vectors.data(), F);
      decoder.token_logits(vectors.data(), F, concept_tokens.ids, z.data());
      std::vector<double> lse;
      if (atlas != nullptr) lse = atlas->layer_logsumexp(kind, layer);
      if (static_cast<int64_t>(lse.size()) != F) {
        const std::vector<NeuronDecoding> decoded = decoder.decode_normalized(vectors.data(), F);
        lse.resize(static_cast<size_t>(F));
        for (int64_t i = 0; i < F; ++i) lse[static_cast<size_t>(i)] = decoded[static_cast<size_t>(i)].logsumexp;
      }
      std::vector<ConceptHit> hits(static_cast<size_t>(F));
      std::vector<double> best_logit(static_cast<size_t>(F));
      for (int64_t i = 0; i < F; ++i) {
        ConceptHit& h = hits[static_cast<size_t>(i)];
        h.kind = kind;
        h.layer = layer;
        h.index = i;
        h.logit = -INFINITY;
        for (int64_t j = 0; j < m; ++j) {
          const double zij = z[static_cast<size_t>(i * m + j)];
          h.prob += std::exp(zij - lse[static_cast<size_t>(i)]);
          h.logit = std::max(h.logit, zij);
        }
        best_logit[static_cast<size_t>(i)] = h.logit;
      }
      if (options.rank_by == RankBy::Rank) {
        const std::vector<int64_t> above = decoder.count_logits_above(vectors.data(), F, best_logit.data());
        for (int64_t i = 0; i < F; ++i) hits[static_cast<size_t>(i)].rank = 1 + above[static_cast<size_t>(i)];
      }
      for (const ConceptHit& h : hits) {
        best.push_back({h, {}});
      }
      // Keep the best `limit`, with their vectors.
      const auto keep = std::min<size_t>(best.size(), static_cast<size_t>(options.limit));
      std::partial_sort(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(keep), best.end(),
                        [&](const Candidate& a, const Candidate& b) { return ranks_before(a.hit, b.hit, options.rank_by); });
      best.resize(keep);
      for (Candidate& cand : best) {
        if (cand.vector.empty() && cand.hit.layer == layer && cand.hit.kind == kind) {
          const float* v = vectors.data() + cand.hit.index * d;
          cand.vector.assign(v, v + d);
        }
      }
      if (on_progress) on_progress(++step, steps);
    }
  }
  // The winners' own top tokens and exact ranks.
  std::vector<float> winners(best.size() * static_cast<size_t>(d));
  std::vector<double> thresholds(best.size());
  for (size_t i = 0; i < best.size(); ++i) {
    std::copy(best[i].vector.begin(), best[i].vector.end(), winners.begin() + static_cast<std::ptrdiff_t>(i * d));
    thresholds[i] = best[i].hit.logit;
  }
  const auto n = static_cast<int64_t>(best.size());
  const std::vector<NeuronDecoding> decoded = decoder.decode_normalized(winners.data(), n);
  const std::vector<int64_t> above = decoder.count_logits_above(winners.data(), n, thresholds.data());
  std::vector<ConceptHit> out;
  for (size_t i = 0; i < best.size(); ++i) {
    ConceptHit h = best[i].hit;
    fill_top_from_decoding(h, decoded[i], options.show_top);
    h.rank = 1 + above[i];
    out.push_back(std::move(h));
  }
  return out;
}

std::vector<ConceptHit> find_concept_in_atlas(const Atlas& atlas, const ConceptTokens& concept_tokens,
                                              const FindOptions& options, int64_t* ranked) {
  // Sum, per neuron, the stored probabilities of the concept's tokens.
  struct Key {
    VectorKind kind;
    int64_t layer, index;
    bool operator<(const Key& o) const {
      return std::tie(kind, layer, index) < std::tie(o.kind, o.layer, o.index);
    }
  };
  std::map<Key, ConceptHit> by_neuron;
  const std::set<int64_t> layers(options.layers.begin(), options.layers.end());
  for (int32_t token : concept_tokens.ids) {
    for (const Atlas::TokenHit& t : atlas.neurons_with_token(token)) {
      if (std::find(options.kinds.begin(), options.kinds.end(), t.kind) == options.kinds.end()) continue;
      if (!layers.empty() && !layers.count(t.layer)) continue;
      ConceptHit& h = by_neuron[{t.kind, t.layer, t.index}];
      if (h.rank < 0) {
        h.kind = t.kind;
        h.layer = t.layer;
        h.index = t.index;
        h.logit = t.logit;
        h.rank = t.rank + 1;
      }
      h.prob += t.prob;
      h.logit = std::max(h.logit, t.logit);
      h.rank = std::min<int64_t>(h.rank, t.rank + 1);
    }
  }
  std::vector<ConceptHit> hits;
  for (auto& [key, h] : by_neuron) hits.push_back(h);
  if (ranked != nullptr) *ranked = static_cast<int64_t>(hits.size());
  const auto keep = std::min<size_t>(hits.size(), static_cast<size_t>(options.limit));
  std::partial_sort(hits.begin(), hits.begin() + static_cast<std::ptrdiff_t>(keep), hits.end(),
                    [&](const ConceptHit& a, const ConceptHit& b) { return ranks_before(a, b, options.rank_by); });
  hits.resize(keep);
  for (ConceptHit& h : hits) {
    if (std::optional<AtlasNeuron> n = atlas.neuron(h.kind, h.layer, h.index)) {
      for (size_t i = 0; i < n->top_ids.size() && static_cast<int>(i) < options.show_top; ++i) {
        h.top_ids.push_back(n->top_ids[i]);
        h.top_probs.push_back(n->top_probs[i]);
      }
    }
  }
  return hits;
}

}  // namespace neuronlens

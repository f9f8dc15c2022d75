// Finding the neurons that stand for a concept ("dog", "California").
//
// A concept expands to the single tokens that spell it (with and without a
// leading space, capitalised, plural), and every neuron is scored by what its
// decoded distribution gives those tokens. With the weights the ranking is
// exact over all neurons; with only an atlas it is limited to the stored
// top-k rows.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/decode.h"
#include "neuronlens/model.h"

namespace neuronlens {

struct ConceptTokens {
  std::string concept_text;
  std::vector<int32_t> ids;             // single-token variants found
  std::vector<std::string> variants;    // their text, same order
  std::vector<std::string> not_single;  // variants that are not one token
};

// The id of the normal token whose text is exactly `text`, if any.
std::optional<int32_t> find_token_by_text(const Vocabulary& vocab, const std::string& text);

// Expands a concept to its token variants; `exact` keeps only the text as
// given. Throws Error when no variant is a single token.
ConceptTokens expand_concept(const Vocabulary& vocab, const std::string& concept_text, bool exact);

enum class RankBy { Probability, Logit, Rank };
RankBy rank_by_from_name(const std::string& name);  // "prob", "logit", "rank"

struct ConceptHit {
  VectorKind kind = VectorKind::Up;
  int64_t layer = 0;
  int64_t index = 0;
  double prob = 0;      // sum over the concept's tokens of p(token)
  double logit = 0;     // best logit among the concept's tokens
  int64_t rank = -1;    // 1-based rank of the best concept token in the vocabulary; -1 unknown
  std::vector<int32_t> top_ids;  // the neuron's own top tokens
  std::vector<double> top_probs;
};

struct FindOptions {
  std::vector<VectorKind> kinds{VectorKind::Up, VectorKind::Gate, VectorKind::Down};
  std::vector<int64_t> layers;  // empty: all
  RankBy rank_by = RankBy::Probability;
  int limit = 10;
  int show_top = 8;             // top tokens to report per hit
};

// Exact ranking over every neuron, from the weights. The logsumexp of each
// neuron comes from `atlas` when it holds the layer, else from a full decode
// pass. Ranking by rank needs a full pass over the vocabulary too.
std::vector<ConceptHit> find_concept(const Model& model, const LmHeadDecoder& decoder, const Atlas* atlas,
                                     const ConceptTokens& concept_tokens, const FindOptions& options,
                                     const std::function<void(int64_t, int64_t)>& on_progress = {});

// Ranking within an atlas's stored top-k rows only (no weights at hand).
// `ranked`, when given, is set to how many neurons were ranked: those with a
// concept token in their stored top-k (the hits returned are the best
// options.limit of them).
std::vector<ConceptHit> find_concept_in_atlas(const Atlas& atlas, const ConceptTokens& concept_tokens,
                                              const FindOptions& options, int64_t* ranked = nullptr);

// A head direction (neuronlens/head_circuits.h) whose decoded side holds a
// concept token, ranked as a neuron would be: summed probability of the
// concept's tokens, best logit, best rank within the stored top-k.
struct HeadConceptHit {
  HeadCircuit circuit = HeadCircuit::Ov;
  int64_t layer = 0;
  int64_t head = 0;
  int direction = 0;  // singular direction, 0 = the largest
  int side = 0;       // 0: OV out / QK query; 1: OV in / QK key
  double prob = 0;
  double logit = 0;
  int64_t rank = -1;
  std::vector<int32_t> top_ids;  // that side's own top tokens
  std::vector<double> top_probs;
};

// The head directions of an atlas's mapped circuits (`circuits`, in
// options.layers) that hold the concept's tokens in a side's stored top-k,
// best options.limit first by options.rank_by. Empty when no heads are
// mapped.
std::vector<HeadConceptHit> find_concept_in_heads(const Atlas& atlas, const ConceptTokens& concept_tokens,
                                                  const std::vector<HeadCircuit>& circuits,
                                                  const FindOptions& options);

}  // namespace neuronlens

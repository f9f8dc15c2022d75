// Paged atlas queries: a screenful of neurons at a time, so a browser of a
// Llama-3.1-8B-sized atlas (1.4M neurons) never reads more than it shows.
#include <sqlite3.h>

#include "atlas/sqlite_statement.h"
#include "neuronlens/atlas.h"

namespace neuronlens {
namespace {

const char* order_column(Atlas::NeuronOrder order) {
  switch (order) {
    case Atlas::NeuronOrder::Index: return "neuron";
    case Atlas::NeuronOrder::Entropy: return "entropy";
    case Atlas::NeuronOrder::Top1Prob: return "top1_prob";
  }
  return "neuron";
}

}  // namespace

std::vector<AtlasNeuron> Atlas::layer_neurons(VectorKind kind, int64_t layer, NeuronOrder order, bool descending,
                                              int64_t offset, int64_t limit, int top_tokens) const {
  // The column and direction come from the enum, never from the caller's text.
  const std::string direction = descending ? " DESC" : " ASC";
  std::string sql =
      "SELECT neuron, logsumexp, entropy, topk_mass, top1_prob FROM neurons WHERE kind = ? AND layer = ? ORDER BY ";
  sql += std::string(order_column(order)) + direction;
  if (order != NeuronOrder::Index) sql += ", neuron ASC";
  sql += " LIMIT ? OFFSET ?";
  sql::Statement q(db_, sql);
  q.bind(1, static_cast<int64_t>(kind)).bind(2, layer).bind(3, limit).bind(4, offset);
  sql::Statement t(db_,
                   "SELECT token, logit, prob FROM neuron_tokens WHERE kind = ? AND layer = ? AND neuron = ? "
                   "AND rank < ? ORDER BY rank");
  std::vector<AtlasNeuron> out;
  while (q.step()) {
    AtlasNeuron n;
    n.kind = kind;
    n.layer = layer;
    n.index = q.int64(0);
    n.logsumexp = q.real(1);
    n.entropy = q.real(2);
    n.topk_mass = q.real(3);
    n.top1_prob = q.real(4);
    t.bind(1, static_cast<int64_t>(kind)).bind(2, layer).bind(3, n.index).bind(4, static_cast<int64_t>(top_tokens));
    while (t.step()) {
      n.top_ids.push_back(static_cast<int32_t>(t.int64(0)));
      n.top_logits.push_back(t.real(1));
      n.top_probs.push_back(t.real(2));
    }
    t.reset();
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<Atlas::TokenHit> Atlas::neurons_with_token(int32_t token, int64_t offset, int64_t limit) const {
  std::vector<TokenHit> out;
  // Ties in probability by (kind, layer, neuron), so pages never overlap.
  sql::Statement q(db_,
                   "SELECT kind, layer, neuron, rank, logit, prob FROM neuron_tokens WHERE token = ? "
                   "ORDER BY prob DESC, kind, layer, neuron LIMIT ? OFFSET ?");
  q.bind(1, static_cast<int64_t>(token)).bind(2, limit).bind(3, offset);
  while (q.step()) {
    out.push_back({static_cast<VectorKind>(q.int64(0)), q.int64(1), q.int64(2), static_cast<int>(q.int64(3)), q.real(4),
                   q.real(5)});
  }
  return out;
}

int64_t Atlas::count_neurons_with_token(int32_t token) const {
  sql::Statement q(db_, "SELECT count(*) FROM neuron_tokens WHERE token = ?");
  q.bind(1, static_cast<int64_t>(token));
  return q.step() ? q.int64(0) : 0;
}

}  // namespace neuronlens

// Paged atlas queries: a screenful of neurons at a time, so a browser of a
// Llama-3.1-8B-sized atlas (1.4M neurons) never reads more than it shows.
#include <sqlite3.h>

#include "atlas/neuron_rows.h"
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
  std::string sql = std::string(atlas_rows::kNeuronColumns) + "WHERE kind = ? AND layer = ? ORDER BY ";
  sql += std::string(order_column(order)) + direction;
  if (order != NeuronOrder::Index) sql += ", neuron ASC";
  sql += " LIMIT ? OFFSET ?";
  sql::Statement q(db_, sql);
  q.bind(1, static_cast<int64_t>(kind)).bind(2, layer).bind(3, limit).bind(4, offset);
  sql::Statement top(db_, atlas_rows::kTopTokensQuery);
  std::vector<AtlasNeuron> out;
  while (q.step()) {
    AtlasNeuron n = atlas_rows::neuron_from_row(q, kind, layer);
    atlas_rows::read_top_tokens(top, n, top_tokens);
    out.push_back(std::move(n));
  }
  return out;
}

std::vector<Atlas::TokenHit> Atlas::neurons_with_token(int32_t token, int64_t offset, int64_t limit) const {
  std::vector<TokenHit> out;
  // Ties in probability by (kind, layer, neuron), so pages never overlap.
  // The page is chosen in the by-token index alone (it holds prob and the
  // primary key), and only its own rows are looked up for their logit: a deep
  // page of a common token skips 10^5 rows in milliseconds, not seconds.
  sql::Statement q(db_,
                   "SELECT p.kind, p.layer, p.neuron, p.rank, (SELECT logit FROM neuron_tokens t WHERE t.kind = p.kind "
                   "AND t.layer = p.layer AND t.neuron = p.neuron AND t.rank = p.rank), p.prob "
                   "FROM (SELECT kind, layer, neuron, rank, prob FROM neuron_tokens WHERE token = ? "
                   "ORDER BY prob DESC, kind, layer, neuron LIMIT ? OFFSET ?) p");
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

// The atlas's attention heads: the singular directions of each head's OV and
// QK circuits and their decoded tokens (schema: docs/atlas.md). The tables
// are added to an atlas the first time heads are written to it, so an atlas
// without heads is unchanged and older readers ignore them.
#include <sqlite3.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "atlas/sqlite_statement.h"
#include "neuronlens/atlas.h"
#include "neuronlens/error.h"

namespace neuronlens {
namespace {

constexpr const char* kHeadSchema = R"sql(
CREATE TABLE IF NOT EXISTS head_directions (
  circuit TEXT NOT NULL, layer INTEGER NOT NULL, head INTEGER NOT NULL, rank INTEGER NOT NULL,
  side INTEGER NOT NULL, singular_value REAL NOT NULL,
  logsumexp REAL NOT NULL, entropy REAL NOT NULL, topk_mass REAL NOT NULL,
  top1_token INTEGER NOT NULL, top1_prob REAL NOT NULL,
  PRIMARY KEY (circuit, layer, head, rank, side)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS head_tokens (
  circuit TEXT NOT NULL, layer INTEGER NOT NULL, head INTEGER NOT NULL, rank INTEGER NOT NULL,
  side INTEGER NOT NULL, position INTEGER NOT NULL, token INTEGER NOT NULL, logit REAL NOT NULL, prob REAL NOT NULL,
  PRIMARY KEY (circuit, layer, head, rank, side, position)) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS head_tokens_by_token ON head_tokens (token, prob DESC);
CREATE TABLE IF NOT EXISTS head_layers_done (circuit TEXT NOT NULL, layer INTEGER NOT NULL,
  finished_at TEXT NOT NULL, PRIMARY KEY (circuit, layer));
)sql";

bool has_head_tables(sqlite3* db) {
  sql::Statement q(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'head_layers_done'");
  return q.step();
}

}  // namespace

int Atlas::head_rank() const {
  return meta("head_rank").empty() ? 0 : static_cast<int>(meta_integer("head_rank"));
}

void Atlas::write_head_layer(HeadCircuit circuit, int64_t layer, const std::vector<HeadDirection>& directions,
                             const std::vector<NeuronDecoding> (&decoded)[2]) {
  if (directions.empty() || decoded[0].size() != directions.size() || decoded[1].size() != directions.size()) {
    throw internal_error("write_head_layer: " + std::to_string(directions.size()) + " directions, " +
                         std::to_string(decoded[0].size()) + " and " + std::to_string(decoded[1].size()) +
                         " decodings");
  }
  int rank = 0;
  for (const HeadDirection& d : directions) rank = std::max(rank, d.rank + 1);
  const int have = head_rank();
  if (have != 0 && have != rank) {
    throw bad_input(path_ + ": this atlas's heads were mapped with --head-rank " + std::to_string(have) + ", not " +
                    std::to_string(rank) + "; write to a new atlas file or use the same rank");
  }
  const std::string name(head_circuit_name(circuit));
  sql::exec(db_, "BEGIN IMMEDIATE");
  try {
    sql::exec(db_, kHeadSchema);
    for (const char* table : {"head_directions", "head_tokens"}) {
      sql::Statement clear(db_, std::string("DELETE FROM ") + table + " WHERE circuit = ? AND layer = ?");
      clear.bind(1, name).bind(2, layer);
      clear.run();
    }
    sql::Statement add_direction(db_, "INSERT INTO head_directions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    sql::Statement add_token(db_, "INSERT INTO head_tokens VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (size_t i = 0; i < directions.size(); ++i) {
      const HeadDirection& dir = directions[i];
      for (int side = 0; side < 2; ++side) {
        const NeuronDecoding& r = decoded[side][i];
        add_direction.bind(1, name).bind(2, layer).bind(3, dir.head).bind(4, dir.rank).bind(5, side);
        add_direction.bind(6, dir.singular_value).bind(7, r.logsumexp).bind(8, r.entropy).bind(9, r.topk_mass);
        add_direction.bind(10, static_cast<int64_t>(r.top_ids.at(0))).bind(11, std::exp(r.top_logits.at(0) - r.logsumexp));
        add_direction.run();
        for (size_t position = 0; position < r.top_ids.size(); ++position) {
          add_token.bind(1, name).bind(2, layer).bind(3, dir.head).bind(4, dir.rank).bind(5, side);
          add_token.bind(6, static_cast<int64_t>(position)).bind(7, static_cast<int64_t>(r.top_ids[position]));
          add_token.bind(8, r.top_logits[position]).bind(9, std::exp(r.top_logits[position] - r.logsumexp));
          add_token.run();
        }
      }
    }
    sql::Statement done(db_, "INSERT OR REPLACE INTO head_layers_done VALUES (?, ?, ?)");
    done.bind(1, name).bind(2, layer).bind(3, sql::now_utc());
    done.run();
    sql::Statement put(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES ('head_rank', ?)");
    put.bind(1, std::to_string(rank));
    put.run();
    sql::exec(db_, "COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

bool Atlas::head_layer_done(HeadCircuit circuit, int64_t layer) const {
  if (!has_head_tables(db_)) return false;
  sql::Statement q(db_, "SELECT 1 FROM head_layers_done WHERE circuit = ? AND layer = ?");
  q.bind(1, std::string(head_circuit_name(circuit))).bind(2, layer);
  return q.step();
}

std::vector<std::pair<HeadCircuit, int64_t>> Atlas::head_layers_done() const {
  std::vector<std::pair<HeadCircuit, int64_t>> out;
  if (!has_head_tables(db_)) return out;
  sql::Statement q(db_, "SELECT circuit, layer FROM head_layers_done ORDER BY circuit DESC, layer");
  while (q.step()) {
    const std::string name = q.text(0);
    if (name != "ov" && name != "qk") throw bad_file(path_ + ": corrupt atlas: head circuit '" + name + "'");
    out.emplace_back(head_circuit_from_name(name), q.int64(1));
  }
  return out;
}

std::vector<AtlasHeadDirection> Atlas::head(HeadCircuit circuit, int64_t layer, int64_t head) const {
  std::vector<AtlasHeadDirection> out;
  if (!has_head_tables(db_)) return out;
  const std::string name(head_circuit_name(circuit));
  sql::Statement q(db_,
                   "SELECT rank, side, singular_value, logsumexp, entropy, topk_mass FROM head_directions "
                   "WHERE circuit = ? AND layer = ? AND head = ? ORDER BY rank, side");
  q.bind(1, name).bind(2, layer).bind(3, head);
  while (q.step()) {
    const auto rank = static_cast<int>(q.int64(0));
    const int64_t side = q.int64(1);
    if (rank < 0 || rank > 4096 || side < 0 || side > 1) throw bad_file(path_ + ": corrupt atlas: head direction row");
    if (out.size() <= static_cast<size_t>(rank)) out.resize(static_cast<size_t>(rank) + 1);
    AtlasHeadDirection& d = out[static_cast<size_t>(rank)];
    d.circuit = circuit;
    d.layer = layer;
    d.head = head;
    d.rank = rank;
    d.singular_value = q.real(2);
    AtlasHeadSide& s = d.sides[side];
    s.logsumexp = q.real(3);
    s.entropy = q.real(4);
    s.topk_mass = q.real(5);
  }
  sql::Statement tokens(db_,
                        "SELECT rank, side, token, logit, prob FROM head_tokens WHERE circuit = ? AND layer = ? "
                        "AND head = ? ORDER BY rank, side, position");
  tokens.bind(1, name).bind(2, layer).bind(3, head);
  while (tokens.step()) {
    const int64_t rank = tokens.int64(0), side = tokens.int64(1);
    if (rank < 0 || static_cast<size_t>(rank) >= out.size() || side < 0 || side > 1) {
      throw bad_file(path_ + ": corrupt atlas: head token row without its direction");
    }
    AtlasHeadSide& s = out[static_cast<size_t>(rank)].sides[side];
    s.top_ids.push_back(static_cast<int32_t>(tokens.int64(2)));
    s.top_logits.push_back(tokens.real(3));
    s.top_probs.push_back(tokens.real(4));
  }
  return out;
}

std::vector<Atlas::LayerSummary> Atlas::summarize_heads(HeadCircuit circuit, double threshold) const {
  std::vector<LayerSummary> out;
  if (!has_head_tables(db_)) return out;
  sql::Statement q(db_,
                   "SELECT layer, count(*), avg(entropy), sum(top1_prob > ?) FROM head_directions "
                   "WHERE circuit = ? AND side = 0 GROUP BY layer ORDER BY layer");
  q.bind(1, threshold).bind(2, std::string(head_circuit_name(circuit)));
  while (q.step()) out.push_back({q.int64(0), q.int64(1), q.real(2), q.int64(3)});
  return out;
}

std::vector<AtlasHeadDirection> Atlas::sharpest_heads(HeadCircuit circuit, int limit) const {
  std::vector<AtlasHeadDirection> out;
  if (!has_head_tables(db_)) return out;
  sql::Statement q(db_,
                   "SELECT layer, head, rank FROM head_directions WHERE circuit = ? AND side = 0 "
                   "ORDER BY top1_prob DESC, layer, head, rank LIMIT ?");
  q.bind(1, std::string(head_circuit_name(circuit))).bind(2, static_cast<int64_t>(limit));
  while (q.step()) {
    const std::vector<AtlasHeadDirection> all = head(circuit, q.int64(0), q.int64(1));
    const int64_t rank = q.int64(2);
    if (rank < 0 || static_cast<size_t>(rank) >= all.size()) throw bad_file(path_ + ": corrupt atlas: head rank");
    out.push_back(all[static_cast<size_t>(rank)]);
  }
  return out;
}

std::vector<Atlas::HeadTokenHit> Atlas::heads_with_token(int32_t token) const {
  std::vector<HeadTokenHit> out;
  if (!has_head_tables(db_)) return out;
  sql::Statement q(db_,
                   "SELECT circuit, layer, head, rank, side, position, logit, prob FROM head_tokens WHERE token = ? "
                   "ORDER BY prob DESC");
  q.bind(1, static_cast<int64_t>(token));
  while (q.step()) {
    const std::string name = q.text(0);
    if (name != "ov" && name != "qk") throw bad_file(path_ + ": corrupt atlas: head circuit '" + name + "'");
    out.push_back({head_circuit_from_name(name), q.int64(1), q.int64(2), static_cast<int>(q.int64(3)),
                   static_cast<int>(q.int64(4)), static_cast<int>(q.int64(5)), q.real(6), q.real(7)});
  }
  return out;
}

}  // namespace neuronlens

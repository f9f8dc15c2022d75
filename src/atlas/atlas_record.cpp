// Activation records in the atlas (neuronlens/neuron_record.h): the corpus's
// files and chunks, and one row per FFN neuron with its statistics, the sums
// they come from (so a resumed record continues them exactly) and its top
// contexts packed in a blob. Schema and blob layout: docs/atlas.md.
#include <sqlite3.h>

#include <cmath>
#include <cstring>
#include <string>

#include "neuronlens/atlas.h"
#include "neuronlens/error.h"
#include "sqlite_statement.h"

namespace neuronlens {
namespace {

constexpr const char* kRecordSchema = R"sql(
CREATE TABLE IF NOT EXISTS corpus_files (
  file INTEGER PRIMARY KEY, name TEXT NOT NULL, sha256 TEXT NOT NULL, bytes INTEGER NOT NULL,
  documents INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS corpus_chunks (
  chunk INTEGER PRIMARY KEY, file INTEGER NOT NULL, tokens BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS neuron_records (
  layer INTEGER NOT NULL, neuron INTEGER NOT NULL,
  mean REAL NOT NULL, std REAL NOT NULL, max_abs REAL NOT NULL, density REAL NOT NULL,
  sum REAL NOT NULL, sum_squares REAL NOT NULL, above_threshold INTEGER NOT NULL,
  contexts BLOB NOT NULL,
  PRIMARY KEY (layer, neuron)) WITHOUT ROWID;
)sql";

bool has_record_tables(sqlite3* db) {
  sql::Statement q(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'neuron_records'");
  return q.step();
}

// Little-endian packing (the atlas is written and read on little-endian
// machines only: x86-64 and AArch64).
template <typename T>
void put(std::string& out, T value) {
  char bytes[sizeof(T)];
  std::memcpy(bytes, &value, sizeof(T));
  out.append(bytes, sizeof(T));
}

class BlobReader {
 public:
  BlobReader(std::string_view bytes, const std::string& what) : bytes_(bytes), what_(what) {}
  template <typename T>
  T get() {
    need(sizeof(T));
    T value;
    std::memcpy(&value, bytes_.data() + at_, sizeof(T));
    at_ += sizeof(T);
    return value;
  }
  void read(void* out, size_t n) {
    need(n);
    std::memcpy(out, bytes_.data() + at_, n);
    at_ += n;
  }
  bool done() const { return at_ == bytes_.size(); }

 private:
  void need(size_t n) {
    if (bytes_.size() - at_ < n) throw bad_file(what_ + " is truncated");
  }
  std::string_view bytes_;
  std::string what_;
  size_t at_ = 0;
};

// Blob: u32 n_positive, u32 n_negative, u32 window_slots, then per context
// (positive ones first): f32 activation, i64 chunk, i32 offset,
// i32 window_start, u32 window_len, f32 window_scale, i8[window_slots].
std::string pack_contexts(const NeuronRecordState& state, int64_t window_slots) {
  std::string out;
  const size_t entry = 28 + static_cast<size_t>(window_slots);
  out.reserve(12 + entry * (state.positive.size() + state.negative.size()));
  put<uint32_t>(out, static_cast<uint32_t>(state.positive.size()));
  put<uint32_t>(out, static_cast<uint32_t>(state.negative.size()));
  put<uint32_t>(out, static_cast<uint32_t>(window_slots));
  for (const auto* side : {&state.positive, &state.negative}) {
    for (const NeuronContext& c : *side) {
      put<float>(out, c.activation);
      put<int64_t>(out, c.chunk);
      put<int32_t>(out, c.offset);
      put<int32_t>(out, c.window_start);
      put<uint32_t>(out, static_cast<uint32_t>(c.window.size()));
      put<float>(out, c.window_scale);
      const size_t n = std::min(c.window.size(), static_cast<size_t>(window_slots));
      out.append(reinterpret_cast<const char*>(c.window.data()), n);
      out.append(static_cast<size_t>(window_slots) - n, '\0');
    }
  }
  return out;
}

void unpack_contexts(std::string_view blob, const std::string& what, std::vector<NeuronContext>& positive,
                     std::vector<NeuronContext>& negative) {
  BlobReader in(blob, what);
  const uint32_t n_positive = in.get<uint32_t>(), n_negative = in.get<uint32_t>();
  const uint32_t slots = in.get<uint32_t>();
  if (static_cast<uint64_t>(n_positive + n_negative) * (28 + slots) + 12 != blob.size()) {
    throw bad_file(what + " has " + std::to_string(blob.size()) + " bytes, not what its header says");
  }
  for (uint32_t i = 0; i < n_positive + n_negative; ++i) {
    NeuronContext c;
    c.activation = in.get<float>();
    c.chunk = in.get<int64_t>();
    c.offset = in.get<int32_t>();
    c.window_start = in.get<int32_t>();
    const uint32_t len = in.get<uint32_t>();
    c.window_scale = in.get<float>();
    if (len > slots) throw bad_file(what + ": a context's window is longer than its slots");
    std::vector<int8_t> slots_bytes(slots);
    in.read(slots_bytes.data(), slots);
    c.window.assign(slots_bytes.begin(), slots_bytes.begin() + len);
    (i < n_positive ? positive : negative).push_back(std::move(c));
  }
}

NeuronStats stats_from(double sum, double sum_squares, double max_abs, int64_t above, int64_t tokens) {
  NeuronStats s;
  if (tokens <= 0) return s;
  const double n = static_cast<double>(tokens);
  s.mean = sum / n;
  s.std = std::sqrt(std::max(0.0, sum_squares / n - s.mean * s.mean));
  s.max_abs = max_abs;
  s.density = static_cast<double>(above) / n;
  return s;
}

int64_t meta_int(const Atlas& atlas, const std::string& key) {
  const std::string v = atlas.meta(key);
  try {
    size_t used = 0;
    const long long n = std::stoll(v, &used);
    if (used == v.size()) return n;
  } catch (const std::exception&) {
  }
  throw bad_file(atlas.path() + ": corrupt atlas: metadata '" + key + "' is '" + v + "', expected an integer");
}

}  // namespace

std::optional<RecordInfo> Atlas::record_info() const {
  if (!has_record_tables(db_) || meta("record_identity").empty()) return std::nullopt;
  RecordInfo info;
  info.identity = meta("record_identity");
  info.seq_len = meta_int(*this, "record_seq_len");
  info.chunks_total = meta_int(*this, "record_chunks_total");
  info.chunks_done = meta_int(*this, "record_chunks_done");
  info.tokens_recorded = meta_int(*this, "record_tokens_recorded");
  info.contexts = meta_int(*this, "record_contexts");
  info.window = meta_int(*this, "record_window");
  try {
    info.density_threshold = std::stod(meta("record_density_threshold"));
  } catch (const std::exception&) {
    throw bad_file(path_ + ": corrupt atlas: metadata 'record_density_threshold' is not a number");
  }
  sql::Statement q(db_, "SELECT name, sha256, bytes, documents FROM corpus_files ORDER BY file");
  while (q.step()) info.files.push_back({q.text(0), q.text(1), q.int64(2), q.int64(3)});
  return info;
}

void Atlas::begin_record(const RecordInfo& info, const std::vector<std::vector<int32_t>>& chunks,
                         const std::vector<int32_t>& chunk_file) {
  if (chunks.size() != chunk_file.size() || static_cast<int64_t>(chunks.size()) != info.chunks_total) {
    throw internal_error("begin_record: " + std::to_string(chunks.size()) + " chunks, " +
                         std::to_string(chunk_file.size()) + " file indices, " +
                         std::to_string(info.chunks_total) + " in the info");
  }
  if (record_info()) throw bad_input(path_ + ": this atlas already holds an activation record");
  sql::exec(db_, "BEGIN IMMEDIATE");
  try {
    sql::exec(db_, kRecordSchema);
    sql::Statement add_file(db_, "INSERT INTO corpus_files VALUES (?, ?, ?, ?, ?)");
    for (size_t i = 0; i < info.files.size(); ++i) {
      const CorpusFile& f = info.files[i];
      add_file.bind(1, static_cast<int64_t>(i)).bind(2, f.name).bind(3, f.sha256).bind(4, f.bytes);
      add_file.bind(5, f.documents);
      add_file.run();
    }
    sql::Statement add_chunk(db_, "INSERT INTO corpus_chunks VALUES (?, ?, ?)");
    for (size_t i = 0; i < chunks.size(); ++i) {
      add_chunk.bind(1, static_cast<int64_t>(i)).bind(2, static_cast<int64_t>(chunk_file[i]));
      add_chunk.bind_blob(3, chunks[i].data(), chunks[i].size() * sizeof(int32_t));
      add_chunk.run();
    }
    sql::Statement set(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    const auto put_meta = [&](const std::string& key, const std::string& value) {
      set.bind(1, key).bind(2, value);
      set.run();
    };
    put_meta("record_seq_len", std::to_string(info.seq_len));
    put_meta("record_chunks_total", std::to_string(info.chunks_total));
    put_meta("record_chunks_done", "0");
    put_meta("record_tokens_recorded", "0");
    put_meta("record_contexts", std::to_string(info.contexts));
    put_meta("record_window", std::to_string(info.window));
    char threshold[32];
    std::snprintf(threshold, sizeof threshold, "%.17g", info.density_threshold);
    put_meta("record_density_threshold", threshold);
    put_meta("record_started_at", sql::now_utc());
    put_meta("record_identity", info.identity);  // last: its presence marks a record
    sql::exec(db_, "COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

void Atlas::write_record_checkpoint(int64_t chunks_done, int64_t tokens_recorded,
                                    const std::vector<std::vector<NeuronRecordState>>& states) {
  const std::optional<RecordInfo> info = record_info();
  if (!info) throw internal_error("write_record_checkpoint before begin_record");
  const int64_t slots = 2 * info->window + 1;
  sql::exec(db_, "BEGIN IMMEDIATE");
  try {
    sql::Statement add(db_, "INSERT OR REPLACE INTO neuron_records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)");
    for (size_t layer = 0; layer < states.size(); ++layer) {
      for (size_t i = 0; i < states[layer].size(); ++i) {
        const NeuronRecordState& s = states[layer][i];
        const NeuronStats st = stats_from(s.sum, s.sum_squares, s.max_abs, s.above_threshold, tokens_recorded);
        const std::string blob = pack_contexts(s, slots);
        add.bind(1, static_cast<int64_t>(layer)).bind(2, static_cast<int64_t>(i));
        add.bind(3, st.mean).bind(4, st.std).bind(5, st.max_abs).bind(6, st.density);
        add.bind(7, s.sum).bind(8, s.sum_squares).bind(9, s.above_threshold);
        add.bind_blob(10, blob.data(), blob.size());
        add.run();
      }
    }
    sql::Statement set(db_, "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)");
    set.bind(1, std::string("record_chunks_done")).bind(2, std::to_string(chunks_done));
    set.run();
    set.bind(1, std::string("record_tokens_recorded")).bind(2, std::to_string(tokens_recorded));
    set.run();
    if (chunks_done == info->chunks_total) {
      set.bind(1, std::string("record_finished_at")).bind(2, sql::now_utc());
      set.run();
    }
    sql::exec(db_, "COMMIT");
  } catch (...) {
    sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

std::vector<std::vector<NeuronRecordState>> Atlas::record_states() const {
  std::vector<std::vector<NeuronRecordState>> out;
  if (!record_info()) return out;
  sql::Statement q(db_,
                   "SELECT layer, neuron, sum, sum_squares, max_abs, above_threshold, contexts FROM neuron_records "
                   "ORDER BY layer, neuron");
  while (q.step()) {
    const int64_t layer = q.int64(0), neuron = q.int64(1);
    if (layer < 0 || layer >= settings_.n_layers || neuron < 0 || neuron >= settings_.d_ffn) {
      throw bad_file(path_ + ": corrupt atlas: a neuron record for " + std::to_string(layer) + ":" +
                     std::to_string(neuron) + ", outside the model");
    }
    if (out.empty()) out.assign(static_cast<size_t>(settings_.n_layers),
                                std::vector<NeuronRecordState>(static_cast<size_t>(settings_.d_ffn)));
    NeuronRecordState& s = out[static_cast<size_t>(layer)][static_cast<size_t>(neuron)];
    s.sum = q.real(2);
    s.sum_squares = q.real(3);
    s.max_abs = q.real(4);
    s.above_threshold = q.int64(5);
    unpack_contexts(q.blob(6), path_ + ": the record of neuron " + std::to_string(layer) + ":" + std::to_string(neuron),
                    s.positive, s.negative);
  }
  return out;
}

std::optional<NeuronEvidence> Atlas::neuron_evidence(int64_t layer, int64_t index) const {
  if (!has_record_tables(db_)) return std::nullopt;
  sql::Statement q(db_,
                   "SELECT mean, std, max_abs, density, contexts FROM neuron_records WHERE layer = ? AND neuron = ?");
  q.bind(1, layer).bind(2, index);
  if (!q.step()) return std::nullopt;
  NeuronEvidence e;
  e.layer = layer;
  e.index = index;
  e.stats = {q.real(0), q.real(1), q.real(2), q.real(3)};
  unpack_contexts(q.blob(4), path_ + ": the record of neuron " + std::to_string(layer) + ":" + std::to_string(index),
                  e.positive, e.negative);
  return e;
}

std::vector<NeuronStats> Atlas::layer_stats(int64_t layer) const {
  std::vector<NeuronStats> out;
  if (!has_record_tables(db_)) return out;
  sql::Statement q(db_, "SELECT neuron, mean, std, max_abs, density FROM neuron_records WHERE layer = ? ORDER BY neuron");
  q.bind(1, layer);
  while (q.step()) {
    if (q.int64(0) != static_cast<int64_t>(out.size())) {
      throw bad_file(path_ + ": corrupt atlas: layer " + std::to_string(layer) + "'s neuron records have a gap");
    }
    out.push_back({q.real(1), q.real(2), q.real(3), q.real(4)});
  }
  return out;
}

std::vector<int32_t> Atlas::corpus_chunk(int64_t chunk) const {
  if (!has_record_tables(db_)) throw bad_input(path_ + ": this atlas holds no activation record");
  sql::Statement q(db_, "SELECT tokens FROM corpus_chunks WHERE chunk = ?");
  q.bind(1, chunk);
  if (!q.step()) throw bad_input(path_ + ": the record has no corpus chunk " + std::to_string(chunk));
  const std::string_view bytes = q.blob(0);
  if (bytes.size() % sizeof(int32_t) != 0) {
    throw bad_file(path_ + ": corrupt atlas: corpus chunk " + std::to_string(chunk) + " is not whole token ids");
  }
  std::vector<int32_t> tokens(bytes.size() / sizeof(int32_t));
  std::memcpy(tokens.data(), bytes.data(), bytes.size());
  for (int32_t id : tokens) {
    if (id < 0 || id >= settings_.vocab_size) {
      throw bad_file(path_ + ": corrupt atlas: corpus chunk " + std::to_string(chunk) + " holds token id " +
                     std::to_string(id) + ", outside the vocabulary");
    }
  }
  return tokens;
}

int32_t Atlas::corpus_chunk_file(int64_t chunk) const {
  if (!has_record_tables(db_)) throw bad_input(path_ + ": this atlas holds no activation record");
  sql::Statement q(db_, "SELECT file FROM corpus_chunks WHERE chunk = ?");
  q.bind(1, chunk);
  if (!q.step()) throw bad_input(path_ + ": the record has no corpus chunk " + std::to_string(chunk));
  return static_cast<int32_t>(q.int64(0));
}

}  // namespace neuronlens

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
  id INTEGER PRIMARY KEY,  -- layer * d_ffn + neuron
  layer INTEGER NOT NULL, neuron INTEGER NOT NULL,
  mean REAL NOT NULL, std REAL NOT NULL, max_abs REAL NOT NULL, density REAL NOT NULL,
  sum REAL NOT NULL, sum_squares REAL NOT NULL, above_threshold INTEGER NOT NULL);
-- One row per neuron and sign, each about 1 KB at the defaults, so that
-- several share a 4 KiB page (one row of both signs would fill a page alone).
CREATE TABLE IF NOT EXISTS neuron_contexts (
  id INTEGER PRIMARY KEY,  -- (layer * d_ffn + neuron) * 2 + sign (0 positive, 1 negative)
  contexts BLOB NOT NULL);
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

// Blob of one sign's contexts: u16 count, u16 window_slots, then per
// context (strongest first): f32 activation, u32 chunk, u16 offset,
// u16 window_start, u16 window_len, f32 window_scale, i8[window_slots].
constexpr size_t kBlobHeader = 4, kContextHeader = 18;

std::string pack_contexts(const std::vector<NeuronContext>& contexts, int64_t window_slots) {
  std::string out;
  const size_t entry = kContextHeader + static_cast<size_t>(window_slots);
  out.reserve(kBlobHeader + entry * contexts.size());
  put<uint16_t>(out, static_cast<uint16_t>(contexts.size()));
  put<uint16_t>(out, static_cast<uint16_t>(window_slots));
  for (const NeuronContext& c : contexts) {
    put<float>(out, c.activation);
    put<uint32_t>(out, static_cast<uint32_t>(c.chunk));
    put<uint16_t>(out, static_cast<uint16_t>(c.offset));
    put<uint16_t>(out, static_cast<uint16_t>(c.window_start));
    put<uint16_t>(out, static_cast<uint16_t>(c.window.size()));
    put<float>(out, c.window_scale);
    const size_t n = std::min(c.window.size(), static_cast<size_t>(window_slots));
    out.append(reinterpret_cast<const char*>(c.window.data()), n);
    out.append(static_cast<size_t>(window_slots) - n, '\0');
  }
  return out;
}

std::vector<NeuronContext> unpack_contexts(std::string_view blob, const std::string& what) {
  BlobReader in(blob, what);
  const uint32_t count = in.get<uint16_t>(), slots = in.get<uint16_t>();
  if (static_cast<uint64_t>(count) * (kContextHeader + slots) + kBlobHeader != blob.size()) {
    throw bad_file(what + " has " + std::to_string(blob.size()) + " bytes, not what its header says");
  }
  std::vector<NeuronContext> out;
  for (uint32_t i = 0; i < count; ++i) {
    NeuronContext c;
    c.activation = in.get<float>();
    c.chunk = in.get<uint32_t>();
    c.offset = in.get<uint16_t>();
    c.window_start = in.get<uint16_t>();
    const uint32_t len = in.get<uint16_t>();
    c.window_scale = in.get<float>();
    if (len > slots) throw bad_file(what + ": a context's window is longer than its slots");
    std::vector<int8_t> slots_bytes(slots);
    in.read(slots_bytes.data(), slots);
    c.window.assign(slots_bytes.begin(), slots_bytes.begin() + len);
    out.push_back(std::move(c));
  }
  return out;
}

std::string neuron_name(int64_t layer, int64_t neuron) { return std::to_string(layer) + ":" + std::to_string(neuron); }

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

}  // namespace

std::optional<RecordInfo> Atlas::record_info() const {
  if (!has_record_tables(db_) || meta("record_identity").empty()) return std::nullopt;
  RecordInfo info;
  info.identity = meta("record_identity");
  info.seq_len = meta_integer("record_seq_len");
  info.chunks_total = meta_integer("record_chunks_total");
  info.chunks_done = meta_integer("record_chunks_done");
  info.tokens_recorded = meta_integer("record_tokens_recorded");
  info.contexts = meta_integer("record_contexts");
  info.window = meta_integer("record_window");
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
    sql::Statement add_contexts(db_, "INSERT OR REPLACE INTO neuron_contexts VALUES (?, ?)");
    for (size_t layer = 0; layer < states.size(); ++layer) {
      for (size_t i = 0; i < states[layer].size(); ++i) {
        const NeuronRecordState& s = states[layer][i];
        const NeuronStats st = stats_from(s.sum, s.sum_squares, s.max_abs, s.above_threshold, tokens_recorded);
        const int64_t id = static_cast<int64_t>(layer) * settings_.d_ffn + static_cast<int64_t>(i);
        add.bind(1, id).bind(2, static_cast<int64_t>(layer)).bind(3, static_cast<int64_t>(i));
        add.bind(4, st.mean).bind(5, st.std).bind(6, st.max_abs).bind(7, st.density);
        add.bind(8, s.sum).bind(9, s.sum_squares).bind(10, s.above_threshold);
        add.run();
        for (int sign = 0; sign < 2; ++sign) {
          const std::string blob = pack_contexts(sign == 0 ? s.positive : s.negative, slots);
          add_contexts.bind(1, id * 2 + sign).bind_blob(2, blob.data(), blob.size());
          add_contexts.run();
        }
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
  const auto n_layers = static_cast<size_t>(settings_.n_layers), d_ffn = static_cast<size_t>(settings_.d_ffn);
  sql::Statement q(db_, "SELECT id, layer, neuron, sum, sum_squares, max_abs, above_threshold FROM neuron_records");
  while (q.step()) {
    const int64_t id = q.int64(0), layer = q.int64(1), neuron = q.int64(2);
    if (layer < 0 || layer >= settings_.n_layers || neuron < 0 || neuron >= settings_.d_ffn ||
        id != layer * settings_.d_ffn + neuron) {
      throw bad_file(path_ + ": corrupt atlas: a neuron record for " + neuron_name(layer, neuron) +
                     ", outside the model or under the wrong id");
    }
    if (out.empty()) out.assign(n_layers, std::vector<NeuronRecordState>(d_ffn));
    NeuronRecordState& s = out[static_cast<size_t>(layer)][static_cast<size_t>(neuron)];
    s.sum = q.real(3);
    s.sum_squares = q.real(4);
    s.max_abs = q.real(5);
    s.above_threshold = q.int64(6);
  }
  if (out.empty()) return out;
  sql::Statement c(db_, "SELECT id, contexts FROM neuron_contexts");
  while (c.step()) {
    const int64_t id = c.int64(0);
    if (id < 0 || id >= settings_.n_layers * settings_.d_ffn * 2) {
      throw bad_file(path_ + ": corrupt atlas: neuron_contexts row " + std::to_string(id) + " is outside the model");
    }
    const int64_t neuron_id = id / 2, layer = neuron_id / settings_.d_ffn, neuron = neuron_id % settings_.d_ffn;
    NeuronRecordState& s = out[static_cast<size_t>(layer)][static_cast<size_t>(neuron)];
    (id % 2 == 0 ? s.positive : s.negative) =
        unpack_contexts(c.blob(1), path_ + ": the contexts of neuron " + neuron_name(layer, neuron));
  }
  return out;
}

std::optional<NeuronEvidence> Atlas::neuron_evidence(int64_t layer, int64_t index) const {
  if (!has_record_tables(db_) || layer < 0 || layer >= settings_.n_layers || index < 0 || index >= settings_.d_ffn) {
    return std::nullopt;
  }
  const int64_t id = layer * settings_.d_ffn + index;
  sql::Statement q(db_, "SELECT mean, std, max_abs, density FROM neuron_records WHERE id = ?");
  q.bind(1, id);
  if (!q.step()) return std::nullopt;
  NeuronEvidence e;
  e.layer = layer;
  e.index = index;
  e.stats = {q.real(0), q.real(1), q.real(2), q.real(3)};
  sql::Statement c(db_, "SELECT id, contexts FROM neuron_contexts WHERE id = ? OR id = ?");
  c.bind(1, id * 2).bind(2, id * 2 + 1);
  while (c.step()) {
    (c.int64(0) % 2 == 0 ? e.positive : e.negative) =
        unpack_contexts(c.blob(1), path_ + ": the contexts of neuron " + neuron_name(layer, index));
  }
  return e;
}

std::vector<NeuronStats> Atlas::layer_stats(int64_t layer) const {
  std::vector<NeuronStats> out;
  if (!has_record_tables(db_)) return out;
  sql::Statement q(db_,
                   "SELECT neuron, mean, std, max_abs, density FROM neuron_records WHERE id >= ? AND id < ? ORDER BY id");
  q.bind(1, layer * settings_.d_ffn).bind(2, (layer + 1) * settings_.d_ffn);
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

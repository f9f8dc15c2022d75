// The atlas: one SQLite file holding a neuron map (schema: docs/atlas.md).
// Written a (kind, layer) at a time, each in one transaction, so an
// interrupted map leaves a valid atlas that the next run resumes.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "neuronlens/model.h"
#include "neuronlens/head_circuits.h"
#include "neuronlens/neuron_evidence.h"
#include "neuronlens/neuron.h"

struct sqlite3;

namespace neuronlens {

// What identifies a map: the model it came from and the decode settings.
struct AtlasSettings {
  std::string model_name;
  std::string model_path;
  std::string model_sha256;
  std::string architecture;
  int64_t n_layers = 0;
  int64_t d_model = 0;
  int64_t d_ffn = 0;
  int64_t vocab_size = 0;
  NormMode norm = NormMode::Final;
  ReadNorm read_norm = ReadNorm::None;  // atlases made before it: none
  int top_k = 20;
  // The decode in words (decode_definition): the model's output path.
  std::string method;
  // The bulk product's precision ("exact" or "bf16"; atlases made before it
  // was recorded: empty, float32) and its error bound in words.
  std::string precision;
  std::string precision_bound;
  // The largest bounds on logsumexp and entropy errors of any neuron
  // written so far (NeuronDecoding::logsumexp_error, entropy_error); read
  // back from the atlas, kept up to date by write_layer.
  double max_logsumexp_error = 0;
  double max_entropy_error = 0;
};

// One neuron's row with its top tokens (probabilities derived from logits).
struct AtlasNeuron {
  VectorKind kind = VectorKind::Up;
  int64_t layer = 0;
  int64_t index = 0;
  double logsumexp = 0;
  double entropy = 0;
  double topk_mass = 0;
  double top1_prob = 0;
  std::vector<int32_t> top_ids;
  std::vector<double> top_logits;
  std::vector<double> top_probs;
};

// One singular direction of an attention head's circuit, decoded on both
// sides (neuronlens/head_circuits.h; the schema in docs/atlas.md).
struct AtlasHeadSide {
  double logsumexp = 0;
  double entropy = 0;
  double topk_mass = 0;
  std::vector<int32_t> top_ids;
  std::vector<double> top_logits;
  std::vector<double> top_probs;
};
struct AtlasHeadDirection {
  HeadCircuit circuit = HeadCircuit::Ov;
  int64_t layer = 0;
  int64_t head = 0;
  int rank = 0;
  double singular_value = 0;
  // [0]: OV out (decoded like a down vector: final norm, LM head) or QK
  // query; [1]: OV in or QK key (decoded through the token embedding).
  AtlasHeadSide sides[2];
};

class Atlas {
 public:
  // Creates a new atlas or opens an existing one for writing. An existing
  // atlas must have been made from the same model and settings, else Error.
  static Atlas create_or_resume(const std::string& path, const AtlasSettings& settings, const Vocabulary& vocab);
  // Opens an existing atlas read-only; checks it is a neuronlens atlas of a
  // known schema version.
  static Atlas open(const std::string& path);

  Atlas(Atlas&&) noexcept;
  Atlas& operator=(Atlas&&) noexcept;
  ~Atlas();

  const std::string& path() const { return path_; }
  const AtlasSettings& settings() const { return settings_; }
  std::string meta(const std::string& key) const;  // "" when absent

  // A map's run of write_layer calls goes inside one BulkWrite: it drops the
  // by-token index of the neurons' top-k rows, which, kept up to date, halves
  // the write rate from the first layer and slows it further as the atlas
  // outgrows SQLite's page cache (bench/README.md), and builds it once,
  // sorted, at finish() or, best effort, when it goes out of scope. An atlas
  // whose map was killed in between lacks the index until a map finishes on
  // it: reads stay right; looking neurons up by token scans.
  class BulkWrite {
   public:
    explicit BulkWrite(Atlas& atlas);
    ~BulkWrite();
    BulkWrite(const BulkWrite&) = delete;
    BulkWrite& operator=(const BulkWrite&) = delete;
    void finish();

   private:
    Atlas* atlas_;
  };

  bool layer_done(VectorKind kind, int64_t layer) const;
  std::vector<std::pair<VectorKind, int64_t>> layers_done() const;
  // Writes one (kind, layer): decodings[i] is neuron i. One transaction.
  void write_layer(VectorKind kind, int64_t layer, const std::vector<NeuronDecoding>& decodings);

  // Reading.
  std::optional<AtlasNeuron> neuron(VectorKind kind, int64_t layer, int64_t index) const;
  std::string token_text(int32_t id) const;
  int64_t vocab_rows() const;
  // The stored vocabulary as a Vocabulary (display texts taken as the tokens'
  // bytes), for looking concepts up without the model.
  Vocabulary vocabulary() const;
  // logsumexp of every neuron of (kind, layer), by index; empty if not mapped.
  std::vector<double> layer_logsumexp(VectorKind kind, int64_t layer) const;
  // Neurons that have `token` among their stored top-k: (kind, layer, index, prob).
  struct TokenHit {
    VectorKind kind;
    int64_t layer;
    int64_t index;
    int rank;
    double logit;
    double prob;
  };
  std::vector<TokenHit> neurons_with_token(int32_t token) const;
  // Token ids whose display text contains `text` (full-text index), best first.
  std::vector<int32_t> search_tokens(const std::string& text, int limit) const;
  // Per-layer summary of one kind: mean entropy and count of neurons whose
  // top-1 probability exceeds `threshold`.
  struct LayerSummary {
    int64_t layer;
    int64_t neurons;
    double mean_entropy;
    int64_t specialised;
  };
  std::vector<LayerSummary> summarize(VectorKind kind, double threshold) const;
  // Paged reading, for browsing a large atlas a screenful at a time.
  enum class NeuronOrder { Index, Entropy, Top1Prob };
  // Neurons offset .. offset+limit-1 of (kind, layer) in `order` (ties by
  // index, ascending), each with its first `top_tokens` top tokens.
  std::vector<AtlasNeuron> layer_neurons(VectorKind kind, int64_t layer, NeuronOrder order, bool descending,
                                         int64_t offset, int64_t limit, int top_tokens) const;
  // One page of neurons_with_token(token), and how many there are in all.
  std::vector<TokenHit> neurons_with_token(int32_t token, int64_t offset, int64_t limit) const;
  int64_t count_neurons_with_token(int32_t token) const;

  // Heads (neuronlens/head_circuits.h): the directions of one (circuit,
  // layer), all its heads' `rank` directions, in one transaction;
  // decoded[0][i] and decoded[1][i] are directions[i]'s two sides. Every
  // layer of an atlas has the same rank: another throws Error.
  void write_head_layer(HeadCircuit circuit, int64_t layer, const std::vector<HeadDirection>& directions,
                        const std::vector<NeuronDecoding> (&decoded)[2]);
  bool head_layer_done(HeadCircuit circuit, int64_t layer) const;
  std::vector<std::pair<HeadCircuit, int64_t>> head_layers_done() const;
  // The rank the heads were mapped at; 0 when none were.
  int head_rank() const;
  // One head's directions, by rank; empty when its layer is not mapped.
  std::vector<AtlasHeadDirection> head(HeadCircuit circuit, int64_t layer, int64_t head) const;
  // Per layer, over its head directions' side 0 (OV out, QK query): count,
  // mean entropy and how many have top-1 probability above `threshold`.
  std::vector<LayerSummary> summarize_heads(HeadCircuit circuit, double threshold) const;
  // The `limit` directions of `circuit` whose side 0 (OV out, QK query) is
  // the most specialised (highest top-1 probability), with their tokens.
  std::vector<AtlasHeadDirection> sharpest_heads(HeadCircuit circuit, int limit) const;
  // Head directions that have `token` among a side's stored top-k, most
  // probable first.
  struct HeadTokenHit {
    HeadCircuit circuit;
    int64_t layer;
    int64_t head;
    int rank;
    int side;
    int position;
    double logit;
    double prob;
  };
  std::vector<HeadTokenHit> heads_with_token(int32_t token) const;

  // top-1 token of every neuron of (kind, layer), by index.
  std::vector<int32_t> layer_top1(VectorKind kind, int64_t layer) const;
  // top-k token ids of every neuron of (kind, layer), by index.
  std::vector<std::vector<int32_t>> layer_topk(VectorKind kind, int64_t layer) const;

  // Activation records (neuronlens/neuron_record.h; the tables are created
  // by the first record, docs/atlas.md). nullopt when the atlas has none.
  std::optional<RecordInfo> record_info() const;
  // Starts a record: the corpus's chunks ([chunks][tokens], chunk_file
  // [chunks]) and `info` with no chunk done. Error if a record exists.
  void begin_record(const RecordInfo& info, const std::vector<std::vector<int32_t>>& chunks,
                    const std::vector<int32_t>& chunk_file);
  // One checkpoint, in one transaction: every neuron's state
  // ([n_layers][d_ffn]) after `chunks_done` chunks holding `tokens_recorded`
  // recorded tokens.
  void write_record_checkpoint(int64_t chunks_done, int64_t tokens_recorded,
                               const std::vector<std::vector<NeuronRecordState>>& states);
  // The last checkpoint's states ([n_layers][d_ffn]); empty before the first.
  std::vector<std::vector<NeuronRecordState>> record_states() const;
  // A neuron's recorded evidence; nullopt without a record or for a neuron
  // past the last.
  std::optional<NeuronEvidence> neuron_evidence(int64_t layer, int64_t index) const;
  // The statistics of a layer's neurons, by index; empty without a record.
  std::vector<NeuronStats> layer_stats(int64_t layer) const;
  // One corpus chunk's token ids; Error past the last.
  std::vector<int32_t> corpus_chunk(int64_t chunk) const;
  // The corpus file a chunk came from (index into record_info()->files).
  int32_t corpus_chunk_file(int64_t chunk) const;

 private:
  Atlas() = default;
  void load_settings();
  // meta(key) as a whole integer; anything else (absent, "12x") is a corrupt
  // atlas: Error (bad file) naming the key and the value.
  int64_t meta_integer(const std::string& key) const;
  std::string path_;
  sqlite3* db_ = nullptr;
  AtlasSettings settings_;
};

}  // namespace neuronlens

// What the request handlers share: the atlas (a pool of connections), its
// vocabulary, the model when there is one, the locks that keep the expensive
// work one at a time, and the caches. Built once when the server starts;
// everything here is safe to use from any worker thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "atlas_pool.h"
#include "error_reply.h"
#include "neuronlens/decode.h"
#include "neuronlens/text_model.h"
#include "neuronlens/vocab.h"

namespace neuronlens::server {

struct ServeOptions {
  std::string atlas_path;
  std::string model_path;     // "": the weights the atlas records
  bool no_model = false;      // serve the atlas alone
  std::string compare_path;   // "": no comparison
};

// The limits docs/api.md promises.
inline constexpr int64_t kMaxTokens = 256;
inline constexpr size_t kMaxInterventions = 16;
inline constexpr size_t kMaxPromptBytes = 4096;
inline constexpr size_t kMaxQueryBytes = 100;
inline constexpr int64_t kMaxPageLimit = 200;
inline constexpr int64_t kMaxSearchDepth = 1000;  // offset + limit of a search
inline constexpr size_t kMaxBodyBytes = 64 * 1024;
inline constexpr double kMaxClampValue = 1e4;

class SearchCache;
class CompareIndex;

class ServerContext {
 public:
  // Opens the atlas, loads the model unless told not to, opens the compare
  // atlas. Throws Error (a bad atlas, weights that do not load, an explicit
  // --model that is not the atlas's, a compare atlas of another shape).
  explicit ServerContext(const ServeOptions& options);
  ~ServerContext();

  AtlasPool& atlas() { return atlas_; }
  const AtlasSettings& settings() const { return atlas_.settings(); }
  // The atlas's display text of a token ("<ID>" outside the vocabulary).
  std::string token_text(int32_t id) const;
  const Vocabulary& atlas_vocabulary() const { return atlas_vocab_; }
  int64_t vocab_rows() const { return atlas_vocab_.size(); }

  bool is_mapped(VectorKind kind, int64_t layer) const;
  const std::map<VectorKind, std::set<int64_t>>& mapped() const { return mapped_; }
  int64_t neuron_count() const { return neuron_count_; }
  // The layers whose heads' circuits the atlas maps, and at what rank (0: none).
  const std::map<HeadCircuit, std::set<int64_t>>& mapped_heads() const { return mapped_heads_; }
  bool is_head_mapped(HeadCircuit circuit, int64_t layer) const;
  int head_rank() const { return head_rank_; }

  // The model, or nullptr; `model_note` says why there is none.
  const TextModel* text_model() const { return text_model_ ? &*text_model_ : nullptr; }
  const std::string& model_note() const { return model_note_; }
  // The atlas's activation record (`neuronlens record`), as it was when the
  // server started; nullopt without one.
  const std::optional<RecordInfo>& record() const { return record_; }
  const LmHeadDecoder* decoder() const { return decoder_.get(); }
  // The model or a 409.
  const TextModel& require_model() const;

  // One activation/generation/probe at a time: handlers try_lock it and answer
  // 429 when it is held. Public so a test can hold it.
  std::mutex& model_mutex() { return model_mutex_; }
  // The forward-pass session, made on first use. Only with model_mutex held.
  Session& session_locked();

  // One exact concept search computation at a time (each is a pass over all
  // the weights); cached results skip it.
  std::mutex& search_mutex() { return search_mutex_; }
  SearchCache& search_cache() { return *search_cache_; }

  // Heat map statistics per (kind, layer) for a threshold, cached.
  nlohmann::json overview(double threshold);
  // The record's agreement with the down decode per layer
  // (neuronlens/record_agreement.h), computed on first call; {"available":
  // false, "note": why} without a record or a down map.
  nlohmann::json agreement();

  // The comparison, or a 409 when the server has no compare atlas.
  CompareIndex& require_compare();
  const CompareIndex* compare() const { return compare_.get(); }

  // The files the server reads, whose paths no error message may show.
  const PathScrubber& paths() const { return paths_; }

  // Set when the server is stopping: long generations end early.
  std::atomic<bool>& stopping() { return stopping_; }

 private:
  PathScrubber paths_;
  AtlasPool atlas_;
  Vocabulary atlas_vocab_;
  std::map<VectorKind, std::set<int64_t>> mapped_;
  std::map<HeadCircuit, std::set<int64_t>> mapped_heads_;
  int head_rank_ = 0;
  int64_t neuron_count_ = 0;
  std::optional<TextModel> text_model_;
  std::string model_note_;
  std::optional<RecordInfo> record_;
  std::unique_ptr<LmHeadDecoder> decoder_;
  std::mutex model_mutex_;
  std::unique_ptr<Session> session_;
  std::mutex search_mutex_;
  std::unique_ptr<SearchCache> search_cache_;
  std::mutex agreement_mutex_;
  std::optional<nlohmann::json> agreement_cache_;
  std::mutex overview_mutex_;
  std::map<double, nlohmann::json> overview_cache_;
  std::unique_ptr<CompareIndex> compare_;
  std::atomic<bool> stopping_{false};
};

}  // namespace neuronlens::server

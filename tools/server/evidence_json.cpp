// evidence_json.h.
#include "evidence_json.h"

namespace neuronlens::server {
namespace {

nlohmann::json contexts_json(const Atlas& atlas, const std::vector<NeuronContext>& contexts, int64_t limit) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < contexts.size() && (limit < 0 || static_cast<int64_t>(i) < limit); ++i) {
    const NeuronContext& c = contexts[i];
    nlohmann::json tokens = nlohmann::json::array();
    for (const ContextToken& t : context_window(atlas, c)) {
      tokens.push_back({{"id", t.id}, {"text", t.text}, {"activation", t.activation}, {"fired", t.fired}});
    }
    out.push_back({{"activation", c.activation}, {"chunk", c.chunk}, {"offset", c.offset}, {"tokens", tokens}});
  }
  return out;
}

}  // namespace

nlohmann::json evidence_json(const Atlas& atlas, const NeuronEvidence& evidence, int64_t contexts) {
  const NeuronStats& s = evidence.stats;
  return {{"stats", {{"mean", s.mean}, {"std", s.std}, {"max_abs", s.max_abs}, {"density", s.density}}},
          {"positive", contexts_json(atlas, evidence.positive, contexts)},
          {"negative", contexts_json(atlas, evidence.negative, contexts)}};
}

nlohmann::json record_info_json(const std::optional<RecordInfo>& info) {
  if (!info) return nullptr;
  nlohmann::json files = nlohmann::json::array();
  for (const CorpusFile& f : info->files) {
    files.push_back({{"name", f.name}, {"sha256", f.sha256}, {"bytes", f.bytes}, {"documents", f.documents}});
  }
  return {{"files", files},
          {"seq_len", info->seq_len},
          {"chunks_total", info->chunks_total},
          {"chunks_done", info->chunks_done},
          {"tokens_recorded", info->tokens_recorded},
          {"contexts", info->contexts},
          {"window", info->window},
          {"density_threshold", info->density_threshold},
          {"complete", info->complete()}};
}

}  // namespace neuronlens::server

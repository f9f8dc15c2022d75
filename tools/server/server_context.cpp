// Loading what the server serves (server_context.h).
#include "server_context.h"

#include "compare_index.h"
#include "neuronlens/atlas_weights.h"
#include "neuronlens/error.h"
#include "neuronlens/record_agreement.h"
#include "request_error.h"
#include "search_cache.h"

namespace neuronlens::server {

ServerContext::ServerContext(const ServeOptions& options)
    : atlas_(options.atlas_path),
      atlas_vocab_(atlas_.acquire()->vocabulary()),
      search_cache_(std::make_unique<SearchCache>()) {
  for (const std::string* path : {&options.atlas_path, &options.model_path, &options.compare_path,
                                  &atlas_.settings().model_path}) {
    paths_.add_file(*path);
  }
  const AtlasPool::Lease atlas = atlas_.acquire();
  for (const auto& [kind, layer] : atlas->layers_done()) mapped_[kind].insert(layer);
  for (const auto& [circuit, layer] : atlas->head_layers_done()) mapped_heads_[circuit].insert(layer);
  head_rank_ = atlas->head_rank();
  record_ = atlas->record_info();
  // The default heat map, computed now: it also counts the neurons.
  const nlohmann::json heat_map = overview(0.5);
  for (const auto& cell : heat_map["cells"]) {
    if (cell["kind"] != "ov" && cell["kind"] != "qk") neuron_count_ += cell["neurons"].get<int64_t>();
  }
  if (options.no_model) {
    model_note_ = "started with --no-model";
  } else {
    AtlasWeights weights = load_atlas_weights(*atlas, options.model_path);
    // An explicit --model that cannot serve is a mistake worth stopping for;
    // the recorded path missing is normal for a copied atlas.
    if (!weights.model && !options.model_path.empty()) throw bad_file("--model: " + weights.why_missing);
    if (weights.model) {
      text_model_.emplace(TextModel::with_model(std::move(*weights.model), weights.path));
      DecodeSettings decode;
      decode.norm = settings().norm;
      decode.top_k = settings().top_k;
      decoder_ = std::make_unique<LmHeadDecoder>(text_model_->model, decode);
    } else {
      // Shown by /api/info and 409 replies: the server's paths cut as in errors.
      model_note_ = paths_.scrub(weights.why_missing);
    }
  }
  if (!options.compare_path.empty()) {
    compare_ = std::make_unique<CompareIndex>(options.compare_path, settings());
    paths_.add_file(compare_->settings().model_path);
  }
}

ServerContext::~ServerContext() = default;

std::string ServerContext::token_text(int32_t id) const {
  if (id >= 0 && id < atlas_vocab_.size()) return atlas_vocab_.token(id).display;
  std::string unknown = "<";  // built in steps: GCC 12 warns falsely on "<" + to_string
  unknown += std::to_string(id);
  unknown += ">";
  return unknown;
}

bool ServerContext::is_head_mapped(HeadCircuit circuit, int64_t layer) const {
  const auto it = mapped_heads_.find(circuit);
  return it != mapped_heads_.end() && it->second.count(layer) > 0;
}

bool ServerContext::is_mapped(VectorKind kind, int64_t layer) const {
  const auto it = mapped_.find(kind);
  return it != mapped_.end() && it->second.count(layer) > 0;
}

const TextModel& ServerContext::require_model() const {
  if (!text_model_) throw RequestError(409, "this endpoint needs the model's weights, and the server has none (" +
                                                model_note_ + ")");
  return *text_model_;
}

Session& ServerContext::session_locked() {
  if (!session_) session_ = std::make_unique<Session>(require_model().model);
  return *session_;
}

nlohmann::json ServerContext::agreement() {
  std::lock_guard lock(agreement_mutex_);
  if (agreement_cache_) return *agreement_cache_;
  const AtlasPool::Lease atlas = atlas_.acquire();
  nlohmann::json out;
  if (!record_) {
    out = {{"available", false}, {"note", "no activation record in this atlas (neuronlens record)"}};
  } else if (mapped_.count(VectorKind::Down) == 0) {
    out = {{"available", false}, {"note", "the down kind is not mapped in this atlas (neuronlens map --kinds down)"}};
  } else {
    const ContextAgreementReport report = record_agreement(*atlas, VectorKind::Down);
    nlohmann::json layers = nlohmann::json::array();
    for (const LayerContextAgreement& l : report.layers) {
      layers.push_back({{"layer", l.layer}, {"neurons", l.neurons}, {"mean_rate", l.mean_rate},
                        {"mean_chance", l.mean_chance}, {"above_chance", l.above_chance}});
    }
    out = {{"available", true}, {"kind", "down"}, {"top_k", report.top_k}, {"layers", std::move(layers)}};
  }
  agreement_cache_ = out;
  return out;
}

nlohmann::json ServerContext::overview(double threshold) {
  std::lock_guard lock(overview_mutex_);
  if (const auto it = overview_cache_.find(threshold); it != overview_cache_.end()) return it->second;
  nlohmann::json cells = nlohmann::json::array();
  const AtlasPool::Lease atlas = atlas_.acquire();
  for (VectorKind kind : {VectorKind::Up, VectorKind::Gate, VectorKind::Down}) {
    for (const Atlas::LayerSummary& s : atlas->summarize(kind, threshold)) {
      const double neurons = static_cast<double>(s.neurons);
      cells.push_back({{"kind", std::string(vector_kind_name(kind))},
                       {"layer", s.layer},
                       {"neurons", s.neurons},
                       {"mean_entropy", s.mean_entropy},
                       {"specialised", s.specialised},
                       {"specialised_share", s.neurons > 0 ? static_cast<double>(s.specialised) / neurons : 0.0}});
    }
  }
  // Heads: a cell per (circuit, layer) over its directions' OV out / QK
  // query side, "neurons" counting the directions.
  nlohmann::json kinds = {"up", "gate", "down"};
  for (HeadCircuit circuit : {HeadCircuit::Ov, HeadCircuit::Qk}) {
    const std::vector<Atlas::LayerSummary> rows = atlas->summarize_heads(circuit, threshold);
    if (!rows.empty()) kinds.push_back(std::string(head_circuit_name(circuit)));
    for (const Atlas::LayerSummary& s : rows) {
      cells.push_back({{"kind", std::string(head_circuit_name(circuit))},
                       {"layer", s.layer},
                       {"neurons", s.neurons},
                       {"mean_entropy", s.mean_entropy},
                       {"specialised", s.specialised},
                       {"specialised_share", s.neurons > 0 ? static_cast<double>(s.specialised) / double(s.neurons) : 0.0}});
    }
  }
  nlohmann::json out = {{"threshold", threshold},
                        {"kinds", std::move(kinds)},
                        {"n_layers", settings().n_layers},
                        {"cells", std::move(cells)}};
  // Thresholds are the caller's choice: keep a bounded number of them.
  constexpr size_t kMostThresholds = 32;
  if (overview_cache_.size() >= kMostThresholds) overview_cache_.erase(overview_cache_.begin());
  overview_cache_.emplace(threshold, out);
  return out;
}

CompareIndex& ServerContext::require_compare() {
  if (!compare_) throw RequestError(409, "this endpoint needs a second atlas; start the server with --compare OTHER.db");
  return *compare_;
}

}  // namespace neuronlens::server

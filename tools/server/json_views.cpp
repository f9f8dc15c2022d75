// Token and neuron JSON (json_views.h).
#include "json_views.h"

#include <string>

namespace neuronlens::server {

nlohmann::json token_json(const ServerContext& context, int32_t id, std::optional<double> logit,
                          std::optional<double> prob) {
  nlohmann::json j = {{"id", id}, {"text", context.token_text(id)}};
  if (logit) j["logit"] = *logit;
  if (prob) j["prob"] = *prob;
  return j;
}

nlohmann::json neuron_summary_json(const ServerContext& context, const AtlasNeuron& neuron, int show_top) {
  nlohmann::json top = nlohmann::json::array();
  for (size_t i = 0; i < neuron.top_ids.size() && (show_top < 0 || static_cast<int>(i) < show_top); ++i) {
    top.push_back(token_json(context, neuron.top_ids[i], neuron.top_logits[i], neuron.top_probs[i]));
  }
  return {{"layer", neuron.layer},
          {"kind", std::string(vector_kind_name(neuron.kind))},
          {"index", neuron.index},
          {"entropy", neuron.entropy},
          {"logsumexp", neuron.logsumexp},
          {"topk_mass", neuron.topk_mass},
          {"top1_prob", neuron.top1_prob},
          {"top", std::move(top)}};
}

nlohmann::json page_json(int64_t total, int64_t offset, int64_t limit, nlohmann::json items) {
  return {{"total", total}, {"offset", offset}, {"limit", limit}, {"items", std::move(items)}};
}

}  // namespace neuronlens::server

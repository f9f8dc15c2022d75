#include "circuits_json.h"

namespace neuronlens::server {
namespace {

nlohmann::json token_entry(int32_t id, const TokenTextOf& text_of) { return {{"id", id}, {"text", text_of(id)}}; }

nlohmann::json cells(const std::vector<double>& shares, const std::vector<double>& effects,
                     const std::vector<int64_t>& layers, int64_t cols, const char* col_name) {
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < shares.size(); ++i) {
    out.push_back({{"layer", layers[i / static_cast<size_t>(cols)]},
                   {col_name, static_cast<int64_t>(i) % cols},
                   {"restored", shares[i]},
                   {"effect", effects[i]}});
  }
  return out;
}

}  // namespace

nlohmann::json attribution_json(const Attribution& a, int64_t top, const TokenTextOf& text_of,
                                const ComponentTokens& tokens_of) {
  nlohmann::json j;
  j["position"] = a.position;
  j["token"] = token_entry(a.token, text_of);
  j["vs"] = a.versus ? token_entry(*a.versus, text_of) : nlohmann::json();
  j["logit"] = a.logit;
  j["sum"] = a.sum();
  j["remainder"] = a.remainder();
  j["final_scale"] = a.final_scale;
  j["embedding"] = a.embedding;
  j["layers"] = nlohmann::json::array();
  for (size_t l = 0; l < a.layers.size(); ++l) {
    j["layers"].push_back({{"layer", l}, {"attention", a.layers[l].attention}, {"mlp", a.layers[l].mlp}});
  }
  j["components"] = nlohmann::json::array();
  for (const LogitComponent& c : a.top(top)) {
    nlohmann::json e = {{"kind", component_kind_name(c.kind)}, {"contribution", c.contribution}};
    if (c.kind != ComponentKind::Embedding) e["layer"] = c.layer;
    if (c.kind == ComponentKind::Head) e["head"] = c.index;
    if (c.kind == ComponentKind::Neuron) e["neuron"] = c.index;
    if (tokens_of) {
      const std::vector<std::string> tokens = tokens_of(c);
      if (!tokens.empty()) e["tokens"] = tokens;
    }
    j["components"].push_back(std::move(e));
  }
  const auto& check = a.top_head_check;
  j["top_head_check"] = {
      {"layer", check.layer}, {"head", check.head}, {"attributed", check.attributed}, {"ablated_change", check.change}};
  return j;
}

nlohmann::json patching_json(const PatchingResult& r, const std::vector<int32_t>& clean,
                             const std::vector<int32_t>& corrupt, const TokenTextOf& text_of) {
  nlohmann::json j;
  j["tokens"] = nlohmann::json::array();
  for (size_t p = 0; p < clean.size(); ++p) {
    j["tokens"].push_back({{"position", p}, {"clean", text_of(clean[p])}, {"corrupt", text_of(corrupt[p])}});
  }
  j["token"] = token_entry(r.token, text_of);
  j["vs"] = r.versus ? token_entry(*r.versus, text_of) : nlohmann::json();
  j["clean"] = r.clean;
  j["corrupt"] = r.corrupt;
  j["layers"] = r.layers;
  j["residual"] = cells(r.residual, r.residual_effect, r.layers, r.n_tokens, "position");
  j["mlp"] = cells(r.mlp, r.mlp_effect, r.layers, r.n_tokens, "position");
  j["heads"] = cells(r.heads, r.heads_effect, r.layers, r.n_heads, "head");
  return j;
}

}  // namespace neuronlens::server

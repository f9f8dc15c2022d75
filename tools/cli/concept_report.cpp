#include "concept_report.h"

#include <cstdio>

#include "format.h"

namespace neuronlens::cli {

void print_concept_hits(const ConceptTokens& ct, const std::vector<ConceptHit>& hits, const TokenText& text,
                        bool exact_ranking) {
  std::string variants;
  for (const std::string& v : ct.variants) variants += (variants.empty() ? "" : ", ") + quote_token(v);
  std::printf("concept %s -> tokens %s\n", quote_token(ct.concept_text).c_str(), variants.c_str());
  if (!ct.not_single.empty()) {
    std::string multi;
    for (const std::string& v : ct.not_single) multi += (multi.empty() ? "" : ", ") + quote_token(v);
    std::printf("  not single tokens (left out): %s\n", multi.c_str());
  }
  if (!exact_ranking) {
    std::printf("  note: ranked within the atlas's stored top-k rows only (model weights not available)\n");
  }
  std::printf("  %-5s %5s %6s %9s %8s %6s  %s\n", "kind", "layer", "neuron", "p(concept)", "logit", "rank",
              "top tokens");
  for (const ConceptHit& h : hits) {
    std::string tops;
    for (size_t i = 0; i < h.top_ids.size(); ++i) {
      char p[32];
      std::snprintf(p, sizeof p, " %.2f", h.top_probs[i]);
      tops += (i ? "  " : "") + quote_token(text(h.top_ids[i])) + p;
    }
    std::printf("  %-5s %5lld %6lld %9.4f %8.3f %6lld  %s\n", std::string(vector_kind_name(h.kind)).c_str(),
                static_cast<long long>(h.layer), static_cast<long long>(h.index), h.prob, h.logit,
                static_cast<long long>(h.rank), tops.c_str());
  }
}

namespace {

std::string top_tokens_text(const std::vector<int32_t>& ids, const std::vector<double>& probs, const TokenText& text) {
  std::string tops;
  for (size_t i = 0; i < ids.size(); ++i) {
    char p[32];
    std::snprintf(p, sizeof p, " %.2f", probs[i]);
    tops += (i ? "  " : "") + quote_token(text(ids[i])) + p;
  }
  return tops;
}

}  // namespace

void print_head_concept_hits(const std::vector<HeadConceptHit>& hits, const TokenText& text) {
  if (hits.empty()) return;
  std::printf("  attention head directions (within the stored top-k; L:CIRCUIT:HEAD rDIRECTION side):\n");
  for (const HeadConceptHit& h : hits) {
    const std::string where = std::to_string(h.layer) + ":" + std::string(head_circuit_name(h.circuit)) + ":" +
                              std::to_string(h.head) + " r" + std::to_string(h.direction) + " " +
                              std::string(head_side_name(h.circuit, h.side));
    std::printf("  %-22s %9.4f %8.3f %6lld  %s\n", where.c_str(), h.prob, h.logit, static_cast<long long>(h.rank),
                top_tokens_text(h.top_ids, h.top_probs, text).c_str());
  }
}

nlohmann::json head_concept_hits_json(const std::vector<HeadConceptHit>& hits, const TokenText& text) {
  nlohmann::json out = nlohmann::json::array();
  for (const HeadConceptHit& h : hits) {
    nlohmann::json top = nlohmann::json::array();
    for (size_t i = 0; i < h.top_ids.size(); ++i) {
      top.push_back({{"id", h.top_ids[i]}, {"text", text(h.top_ids[i])}, {"prob", h.top_probs[i]}});
    }
    out.push_back({{"kind", head_circuit_name(h.circuit)},
                   {"layer", h.layer},
                   {"head", h.head},
                   {"direction", h.direction},
                   {"side", head_side_name(h.circuit, h.side)},
                   {"prob", h.prob},
                   {"logit", h.logit},
                   {"rank", h.rank},
                   {"top_tokens", top}});
  }
  return out;
}

nlohmann::json concept_hits_json(const ConceptTokens& ct, const std::vector<ConceptHit>& hits, const TokenText& text,
                                 bool exact_ranking) {
  nlohmann::json j;
  j["concept"] = ct.concept_text;
  j["tokens"] = nlohmann::json::array();
  for (size_t i = 0; i < ct.ids.size(); ++i) j["tokens"].push_back({{"id", ct.ids[i]}, {"text", ct.variants[i]}});
  j["not_single_tokens"] = ct.not_single;
  j["exact"] = exact_ranking;
  j["neurons"] = nlohmann::json::array();
  for (const ConceptHit& h : hits) {
    nlohmann::json top = nlohmann::json::array();
    for (size_t i = 0; i < h.top_ids.size(); ++i) {
      top.push_back({{"id", h.top_ids[i]}, {"text", text(h.top_ids[i])}, {"prob", h.top_probs[i]}});
    }
    j["neurons"].push_back({{"kind", vector_kind_name(h.kind)},
                            {"layer", h.layer},
                            {"neuron", h.index},
                            {"prob", h.prob},
                            {"logit", h.logit},
                            {"rank", h.rank},
                            {"top_tokens", top}});
  }
  return j;
}

}  // namespace neuronlens::cli

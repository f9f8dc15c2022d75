// Printing concept-search results, shared by `find` and the summary after `map`.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "neuronlens/concept_search.h"
#include "token_text.h"

namespace neuronlens::cli {

void print_concept_hits(const ConceptTokens& concept_tokens, const std::vector<ConceptHit>& hits,
                        const TokenText& text, bool exact_ranking);

nlohmann::json concept_hits_json(const ConceptTokens& concept_tokens, const std::vector<ConceptHit>& hits,
                                 const TokenText& text, bool exact_ranking);

// The head directions that hold a concept's tokens (find on an atlas with
// heads), printed after the neurons, or their JSON array.
void print_head_concept_hits(const std::vector<HeadConceptHit>& hits, const TokenText& text);
nlohmann::json head_concept_hits_json(const std::vector<HeadConceptHit>& hits, const TokenText& text);

}  // namespace neuronlens::cli

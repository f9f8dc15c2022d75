// Token id -> display text, from a model's vocabulary or an atlas.
#pragma once

#include <functional>
#include <string>

#include "neuronlens/atlas.h"
#include "neuronlens/model.h"

namespace neuronlens::cli {

using TokenText = std::function<std::string(int32_t)>;

inline TokenText token_text_of(const Vocabulary& vocab) {
  return [&vocab](int32_t id) -> std::string {
    if (id >= 0 && id < vocab.size()) return vocab.token(id).display;
    return "<pad " + std::to_string(id) + ">";
  };
}

inline TokenText token_text_of(const Atlas& atlas) {
  return [&atlas](int32_t id) { return atlas.token_text(id); };
}

}  // namespace neuronlens::cli

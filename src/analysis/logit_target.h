// The logit an analysis measures at the last position: logit(token), or the
// difference logit(token) − logit(versus) (attribution.h, patching.h).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/model.h"

namespace neuronlens {

struct LogitTarget {
  int32_t token = 0;
  std::optional<int32_t> versus;

  // Throws Error (bad input), named by `who` ("attribute"), for an id
  // outside the vocabulary or versus == token.
  void check(const ModelConfig& c, const std::string& who) const {
    auto in_vocabulary = [&](int32_t id, const std::string& what) {
      if (id < 0 || id >= c.vocab_size) {
        throw bad_input(what + ": token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                        std::to_string(c.vocab_size) + ")");
      }
    };
    in_vocabulary(token, who);
    if (!versus) return;
    in_vocabulary(*versus, who + " --vs");
    if (*versus == token) throw bad_input(who + ": the token and the one it is measured against are the same");
  }

  // The measured value of one position's logits [V].
  double of(const std::vector<float>& logits) const {
    return double(logits[static_cast<size_t>(token)]) - (versus ? double(logits[static_cast<size_t>(*versus)]) : 0.0);
  }
};

}  // namespace neuronlens

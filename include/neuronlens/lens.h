// The logit lens (nostalgebraist, 2020): the residual stream leaving every
// layer, at every position of a prompt, put through the model's final norm and
// LM head as if the model stopped there. Each row is the next-token
// distribution that layer's residual stream already encodes; the last layer's
// row is the model's own prediction (the same norm, head and soft-cap the
// forward pass applies).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "neuronlens/decode.h"
#include "neuronlens/interventions.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"

namespace neuronlens {

struct LensResult {
  int64_t n_layers = 0;
  int64_t n_positions = 0;  // the prompt's tokens, positions 0 .. n_positions-1
  // [n_layers, n_positions] row-major: the top tokens of layer l at position
  // p are decoded[l * n_positions + p]; probabilities exp(top_logits[k] -
  // logsumexp), over the whole vocabulary.
  std::vector<NeuronDecoding> decoded;

  const NeuronDecoding& at(int64_t layer, int64_t position) const {
    return decoded[static_cast<size_t>(layer * n_positions + position)];
  }
};

// Runs `tokens` through `session` from position 0 (the session is reset
// first) and decodes ResidualOut of every layer with `decoder`, whose top_k
// sets how many tokens each row keeps. The session's own hooks (a clamp, say)
// act on the pass, so this is the lens of the intervened model too; the
// recording hooks the lens adds are removed before it returns, also when it
// throws, and the cache holds `tokens` afterwards, as after forward().
// Throws Error if the decoder does not apply the final norm or is of another
// model's width, or as Session::forward does (empty tokens, a bad id, a prompt
// past the context).
LensResult logit_lens(Session& session, const LmHeadDecoder& decoder, const std::vector<int32_t>& tokens);

// The same on a fresh Session (default options) and decoder of `model`,
// keeping `top_k` tokens per row, with `interventions` in force (the lens of
// the intervened model). Throws Error as LmHeadDecoder does on a top_k
// outside 1 to min(1000, vocabulary), or on an intervention outside the model.
LensResult logit_lens(const Model& model, const std::vector<int32_t>& tokens, int top_k,
                      const Interventions& interventions = {});

}  // namespace neuronlens

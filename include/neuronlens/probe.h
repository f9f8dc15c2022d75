// Probing the next token: the model's next-token distribution after a prompt
// without and then with neuron interventions, for a side-by-side reading of
// what a clamp or an ablation changes, and the activations of chosen neurons
// on the prompt. What `neuronlens probe` and POST /api/probe show.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "neuronlens/interventions.h"
#include "neuronlens/runtime.h"
#include "neuronlens/tokenizer.h"

namespace neuronlens {

// The id of `text` as exactly one token (encoded without special tokens or
// BOS): a probe reports one token's probability, and a text that splits has
// none of its own. Throws Error naming the text but no option, e.g. "' dog'
// is 2 tokens, not one (probe a single token, e.g. its first piece)".
int32_t single_token_id(const Tokenizer& tokenizer, const std::string& text);

struct ProbeResult {
  std::vector<double> without;  // [V] softmax of the last prompt token's logits, plain pass
  std::vector<double> with;     // [V] the same with the interventions
  // The MLP post-activation act(gate)*up (HookPoint::MlpAct, the value a
  // clamp fixes) of each recorded neuron during the plain pass:
  // [recorded.size()][prompt.size()], activations[k][p] that of recorded[k]
  // at prompt position p.
  std::vector<std::vector<float>> activations;
};

// Runs `prompt` on `session` from position 0 twice, resetting the cache
// before each pass: once plain, recording `recorded`, and once with
// `interventions` added. Hooks the session already has act on both passes;
// the hooks this adds are removed before it returns, also when it throws,
// so the session's hooks are left as they were. The cache is left empty,
// also when it throws (it would hold the prompt under interventions that are
// no longer there).
// Throws Error as Session::forward does (empty prompt, bad id, past the
// context) or on an intervention or recorded neuron outside the model.
ProbeResult probe_next_token(Session& session, const std::vector<int32_t>& prompt,
                             const Interventions& interventions, const std::vector<FfnNeuron>& recorded = {});

}  // namespace neuronlens

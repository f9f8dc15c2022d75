// The next-token probe (include/neuronlens/probe.h): one plain pass, recording
// the chosen neurons, and one pass with the interventions, on the caller's
// session, whose own hooks are left as they were.
#include "neuronlens/probe.h"

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/sampling.h"
#include "runtime/scoped_hooks.h"

namespace neuronlens {

int32_t single_token_id(const Tokenizer& tokenizer, const std::string& text) {
  const std::vector<int32_t> ids = tokenizer.encode(text, false);
  if (ids.size() != 1) {
    throw bad_input("'" + text + "' is " + std::to_string(ids.size()) +
                    " tokens, not one (probe a single token, e.g. its first piece)");
  }
  return ids[0];
}

ProbeResult probe_next_token(Session& session, const std::vector<int32_t>& prompt,
                             const Interventions& interventions, const std::vector<FfnNeuron>& recorded) {
  // Reset however this ends: the cache would hold the prompt under
  // interventions that are gone, or half of a failed pass.
  struct ResetAtEnd {
    Session& session;
    ~ResetAtEnd() { session.reset(); }
  } reset_at_end{session};
  const ModelConfig& config = session.config();
  // Checked before any hook is added (Session::record checks the layer).
  for (const FfnNeuron& n : recorded) {
    if (n.neuron < 0 || n.neuron >= config.d_ffn) {
      throw bad_input("record: neuron " + std::to_string(n.neuron) + " is outside [0, " + std::to_string(config.d_ffn) +
                      ")");
    }
  }

  ProbeResult result;
  ScopedHooks hooks(session);
  // One record per layer: neurons of the same layer are columns of one [n, F].
  std::map<int64_t, std::shared_ptr<ActivationRecord>> by_layer;
  for (const FfnNeuron& n : recorded) {
    if (by_layer.count(n.layer)) continue;
    HookId id = 0;
    by_layer[n.layer] = session.record(HookPoint::MlpAct, n.layer, &id);
    hooks.add(id);
  }
  session.reset();
  result.without = softmax_probabilities(session.forward(prompt, LogitsFor::LastToken));
  hooks.remove_all();

  for (const FfnNeuron& n : recorded) {
    const ActivationRecord& rec = *by_layer.at(n.layer);
    std::vector<float> column(prompt.size());
    for (int64_t r = 0; r < rec.rows(); ++r) {
      column[static_cast<size_t>(rec.positions[static_cast<size_t>(r)])] =
          rec.values[static_cast<size_t>(r * rec.width + n.neuron)];
    }
    result.activations.push_back(std::move(column));
  }

  session.reset();
  hooks.add(apply_interventions(session, interventions));
  result.with = softmax_probabilities(session.forward(prompt, LogitsFor::LastToken));
  return result;
}

}  // namespace neuronlens

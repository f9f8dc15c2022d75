// The logit lens (include/neuronlens/lens.h): record ResidualOut at every
// layer during one forward pass, then decode every row through the final
// norm and LM head.
#include "neuronlens/lens.h"

#include <memory>
#include <string>
#include <utility>

#include "neuronlens/error.h"
#include "runtime/scoped_hooks.h"

namespace neuronlens {

LensResult logit_lens(Session& session, const LmHeadDecoder& decoder, const std::vector<int32_t>& tokens) {
  const ModelConfig& config = session.config();
  // Without the final norm the rows would not be what the LM head sees at the
  // last layer, and the lens would no longer end at the model's prediction.
  if (decoder.settings().norm != NormMode::Final) {
    throw bad_input("logit lens: the decoder must apply the final norm (norm final), not '" +
                    std::string(norm_mode_name(decoder.settings().norm)) + "'");
  }
  if (decoder.d_model() != config.d_model || decoder.vocab_size() != config.vocab_size) {
    throw bad_input("logit lens: the decoder is of another model (d_model " + std::to_string(decoder.d_model()) +
                    ", vocabulary " + std::to_string(decoder.vocab_size()) + "; the session's: " +
                    std::to_string(config.d_model) + ", " + std::to_string(config.vocab_size) + ")");
  }

  std::vector<std::shared_ptr<ActivationRecord>> residuals;  // per layer: [positions, d]
  {
    ScopedHooks hooks(session);
    for (int64_t layer = 0; layer < config.n_layers; ++layer) {
      HookId id = 0;
      residuals.push_back(session.record(HookPoint::ResidualOut, layer, &id));
      hooks.add(id);
    }
    session.reset();
    session.forward(tokens, LogitsFor::LastToken);
  }

  LensResult result;
  result.n_layers = config.n_layers;
  result.n_positions = static_cast<int64_t>(tokens.size());
  result.decoded.reserve(static_cast<size_t>(result.n_layers * result.n_positions));
  for (auto& record : residuals) {
    // Normalised in place, no copy, and freed once decoded.
    decoder.normalize(record->values.data(), record->rows());
    std::vector<NeuronDecoding> rows = decoder.decode_normalized(record->values.data(), record->rows());
    for (NeuronDecoding& d : rows) result.decoded.push_back(std::move(d));
    record.reset();
  }
  return result;
}

LensResult logit_lens(const Model& model, const std::vector<int32_t>& tokens, int top_k,
                      const Interventions& interventions) {
  DecodeSettings settings;
  settings.norm = NormMode::Final;
  settings.top_k = top_k;
  // A lens decodes layers x positions vectors, far too few for the bf16 bulk
  // product to pay for its packed head; exact logsumexps keep the lens the
  // same on every CPU.
  settings.precision = Precision::Exact;
  const LmHeadDecoder decoder(model, settings);
  Session session(model);
  apply_interventions(session, interventions);
  return logit_lens(session, decoder, tokens);
}

}  // namespace neuronlens

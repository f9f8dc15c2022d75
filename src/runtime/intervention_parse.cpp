// Neuron interventions from text, "LAYER:NEURON" and "LAYER:NEURON=VALUE"
// (include/neuronlens/interventions.h). Messages quote the text and name no
// option: the CLI and the server each put their own name in front.
#include <cmath>
#include <exception>
#include <string>

#include "neuronlens/error.h"
#include "neuronlens/interventions.h"
#include "neuronlens/neuron_map.h"  // parse_nonnegative_integer

namespace neuronlens {
namespace {

// Checks "L:I" (the part before '=' of a clamp); `text` is the whole entry,
// quoted in messages.
FfnNeuron parse_neuron_part(const std::string& part, const std::string& text, const ModelConfig& config) {
  const size_t colon = part.find(':');
  const std::string quoted = "'" + text + "'";
  FfnNeuron n;
  n.layer = parse_nonnegative_integer(part.substr(0, colon), quoted + ": layer");
  n.neuron = parse_nonnegative_integer(part.substr(colon + 1), quoted + ": neuron");
  if (n.layer >= config.n_layers) {
    throw bad_input(quoted + ": layer " + std::to_string(n.layer) + " is out of range (the model has layers 0 to " +
                    std::to_string(config.n_layers - 1) + ")");
  }
  if (n.neuron >= config.d_ffn) {
    throw bad_input(quoted + ": neuron " + std::to_string(n.neuron) + " is out of range (layers have neurons 0 to " +
                    std::to_string(config.d_ffn - 1) + ")");
  }
  return n;
}

// "L:H" of a head entry; `text` is the whole entry, quoted in messages.
AttentionHead parse_head_part(const std::string& part, const std::string& text, const ModelConfig& config) {
  const size_t colon = part.find(':');
  const std::string quoted = "'" + text + "'";
  AttentionHead h;
  h.layer = parse_nonnegative_integer(part.substr(0, colon), quoted + ": layer");
  h.head = parse_nonnegative_integer(part.substr(colon + 1), quoted + ": head");
  if (h.layer >= config.n_layers) {
    throw bad_input(quoted + ": layer " + std::to_string(h.layer) + " is out of range (the model has layers 0 to " +
                    std::to_string(config.n_layers - 1) + ")");
  }
  if (h.head >= config.n_heads) {
    throw bad_input(quoted + ": head " + std::to_string(h.head) + " is out of range (layers have heads 0 to " +
                    std::to_string(config.n_heads - 1) + ")");
  }
  return h;
}

// The VALUE of "...=VALUE", all of it a finite float.
float parse_finite_value(const std::string& value, const std::string& text) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(value, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  // All of it a number, finite as the float the hook uses: stod alone would
  // take "3x" as 3, and 1e300 becomes inf.
  if (value.empty() || used != value.size() || !std::isfinite(static_cast<float>(v))) {
    throw bad_input("'" + text + "': value '" + value + "' is not a finite number");
  }
  return static_cast<float>(v);
}

}  // namespace

AttentionHead parse_attention_head(const std::string& text, const ModelConfig& config) {
  if (text.find(':') == std::string::npos || text.find('=') != std::string::npos) {
    throw bad_input("'" + text + "' is not LAYER:HEAD, e.g. 5:2");
  }
  return parse_head_part(text, text, config);
}

HeadIntervention parse_head_ablation(const std::string& text, const ModelConfig& config) {
  const AttentionHead h = parse_attention_head(text, config);
  return HeadIntervention{h.layer, h.head, 0.0f};
}

HeadIntervention parse_head_scale(const std::string& text, const ModelConfig& config) {
  const size_t colon = text.find(':');
  const size_t equals = text.find('=');
  if (colon == std::string::npos || equals == std::string::npos || equals < colon) {
    throw bad_input("'" + text + "' is not LAYER:HEAD=FACTOR, e.g. 5:2=0.5");
  }
  const AttentionHead h = parse_head_part(text.substr(0, equals), text, config);
  return HeadIntervention{h.layer, h.head, parse_finite_value(text.substr(equals + 1), text)};
}

FfnNeuron parse_ffn_neuron(const std::string& text, const ModelConfig& config) {
  if (text.find(':') == std::string::npos || text.find('=') != std::string::npos) {
    throw bad_input("'" + text + "' is not LAYER:NEURON, e.g. 5:123");
  }
  return parse_neuron_part(text, text, config);
}

NeuronIntervention parse_ablation(const std::string& text, const ModelConfig& config) {
  const FfnNeuron n = parse_ffn_neuron(text, config);
  return NeuronIntervention{n.layer, n.neuron, std::nullopt};
}

NeuronIntervention parse_clamp(const std::string& text, const ModelConfig& config) {
  const size_t colon = text.find(':');
  const size_t equals = text.find('=');
  if (colon == std::string::npos || equals == std::string::npos || equals < colon) {
    throw bad_input("'" + text + "' is not LAYER:NEURON=VALUE, e.g. 5:123=10");
  }
  const FfnNeuron n = parse_neuron_part(text.substr(0, equals), text, config);
  return NeuronIntervention{n.layer, n.neuron, parse_finite_value(text.substr(equals + 1), text)};
}

}  // namespace neuronlens

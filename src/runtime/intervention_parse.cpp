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

}  // namespace

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
  const std::string value = text.substr(equals + 1);
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
  return NeuronIntervention{n.layer, n.neuron, static_cast<float>(v)};
}

}  // namespace neuronlens

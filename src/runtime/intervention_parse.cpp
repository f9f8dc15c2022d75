// Interventions from text: neurons "LAYER:NEURON" and "LAYER:NEURON=VALUE",
// heads "LAYER:HEAD" and "LAYER:HEAD=FACTOR"
// (include/neuronlens/interventions.h). Messages quote the text and name no
// option: the CLI and the server each put their own name in front.
#include <cmath>
#include <exception>
#include <string>
#include <utility>

#include "neuronlens/error.h"
#include "neuronlens/interventions.h"
#include "neuronlens/neuron_map.h"  // parse_nonnegative_integer

namespace neuronlens {
namespace {

// "L:I" (the part before '=' of an entry): a layer and an index below
// `count`, the index named `what` ("neuron", "head") in messages and its
// range `range` ("layers have neurons"); `text` is the whole entry, quoted.
std::pair<int64_t, int64_t> parse_layer_and_index(const std::string& part, const std::string& text,
                                                  const ModelConfig& config, const std::string& what, int64_t count) {
  const size_t colon = part.find(':');
  const std::string quoted = "'" + text + "'";
  const int64_t layer = parse_nonnegative_integer(part.substr(0, colon), quoted + ": layer");
  const int64_t index = parse_nonnegative_integer(part.substr(colon + 1), quoted + ": " + what);
  if (layer >= config.n_layers) {
    throw bad_input(quoted + ": layer " + std::to_string(layer) + " is out of range (the model has layers 0 to " +
                    std::to_string(config.n_layers - 1) + ")");
  }
  if (index >= count) {
    throw bad_input(quoted + ": " + what + " " + std::to_string(index) + " is out of range (layers have " + what +
                    "s 0 to " + std::to_string(count - 1) + ")");
  }
  return {layer, index};
}

FfnNeuron parse_neuron_part(const std::string& part, const std::string& text, const ModelConfig& config) {
  const auto [layer, neuron] = parse_layer_and_index(part, text, config, "neuron", config.d_ffn);
  return FfnNeuron{layer, neuron};
}

AttentionHead parse_head_part(const std::string& part, const std::string& text, const ModelConfig& config) {
  const auto [layer, head] = parse_layer_and_index(part, text, config, "head", config.n_heads);
  return AttentionHead{layer, head};
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

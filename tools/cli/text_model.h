// What the commands that run the model on text (generate, probe, lens) share:
// the model with its tokenizer and chat template, the prompt as token ids,
// and the --clamp / --ablate interventions.
#pragma once

#include <cmath>
#include <cstdint>
#include <exception>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "neuronlens/chat_template.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/model.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/runtime.h"
#include "neuronlens/tokenizer.h"

namespace neuronlens::cli {

struct TextModel {
  Model model;
  Tokenizer tokenizer;
  std::optional<ChatTemplate> chat;  // nullopt: no template neuronlens knows

  static TextModel load(const std::string& path) {
    Model model = Model::load(path);
    const std::filesystem::path folder_tokenizer = std::filesystem::path(path) / "tokenizer.json";
    Tokenizer tokenizer = std::filesystem::is_directory(path) ? Tokenizer::from_tokenizer_json(folder_tokenizer.string())
                                                              : Tokenizer::from_gguf(GgufFile::open(path));
    auto chat = ChatTemplate::detect(read_chat_template_source(path), tokenizer.vocabulary());
    return TextModel{std::move(model), std::move(tokenizer), std::move(chat)};
  }

  // The prompt's token ids: the chat rendering of one user message with
  // `chat`, else the text (with BOS in front where the model wants one).
  // Throws Error on --chat without a template, an empty prompt, or a prompt
  // that leaves no room in the context.
  std::vector<int32_t> prompt_tokens(const std::string& text, bool use_chat) const {
    std::vector<int32_t> ids;
    if (use_chat) {
      if (!chat) throw Error("--chat: this model has no chat template neuronlens knows (supported: ChatML, Llama 3)");
      ids = tokenizer.encode(chat->render({{"user", text}}), true);
    } else {
      if (tokenizer.adds_bos() && tokenizer.bos_id()) ids.push_back(*tokenizer.bos_id());
      const auto body = tokenizer.encode(text, false);
      ids.insert(ids.end(), body.begin(), body.end());
    }
    if (ids.empty()) throw Error("-p: the prompt is empty");
    const int64_t context = model.config().context_length;
    if (static_cast<int64_t>(ids.size()) >= context) {
      throw Error("-p: the prompt is " + std::to_string(ids.size()) + " tokens, the model's context is " +
                  std::to_string(context) + " tokens");
    }
    return ids;
  }

  // Tokens that end generation: the chat template's end-of-turn and EOS, or
  // EOS alone.
  std::vector<int32_t> stop_tokens() const {
    if (chat) return chat->stop_tokens();
    if (tokenizer.eos_id()) return {*tokenizer.eos_id()};
    return {};
  }
};

struct NeuronIntervention {
  int64_t layer = 0;
  int64_t neuron = 0;
  std::optional<float> clamp_value;  // nullopt: ablate
};

// Parses "L:I=VALUE" (clamp) or "L:I" (ablate), checked against the model.
inline NeuronIntervention parse_intervention(const std::string& text, bool is_clamp, const ModelConfig& config) {
  const std::string option = is_clamp ? "--clamp" : "--ablate";
  const std::string form = is_clamp ? "LAYER:NEURON=VALUE, e.g. 5:123=10" : "LAYER:NEURON, e.g. 5:123";
  const size_t colon = text.find(':');
  const size_t equals = text.find('=');
  if (colon == std::string::npos || (is_clamp && (equals == std::string::npos || equals < colon)) ||
      (!is_clamp && equals != std::string::npos)) {
    throw Error(option + ": '" + text + "' is not " + form);
  }
  NeuronIntervention iv;
  const std::string what = option + " '" + text + "'";
  iv.layer = parse_nonnegative_integer(text.substr(0, colon), what + " layer");
  iv.neuron = parse_nonnegative_integer(is_clamp ? text.substr(colon + 1, equals - colon - 1) : text.substr(colon + 1),
                                        what + " neuron");
  if (iv.layer >= config.n_layers) {
    throw Error(what + ": layer " + std::to_string(iv.layer) + " is out of range (the model has layers 0 to " +
                std::to_string(config.n_layers - 1) + ")");
  }
  if (iv.neuron >= config.d_ffn) {
    throw Error(what + ": neuron " + std::to_string(iv.neuron) + " is out of range (layers have neurons 0 to " +
                std::to_string(config.d_ffn - 1) + ")");
  }
  if (is_clamp) {
    const std::string value = text.substr(equals + 1);
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(value, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (value.empty() || used != value.size() || !std::isfinite(v)) {
      throw Error(what + ": value '" + value + "' is not a finite number");
    }
    iv.clamp_value = static_cast<float>(v);
  }
  return iv;
}

inline std::vector<NeuronIntervention> parse_interventions(const std::vector<std::string>& clamps,
                                                           const std::vector<std::string>& ablations,
                                                           const ModelConfig& config) {
  std::vector<NeuronIntervention> out;
  for (const auto& c : clamps) out.push_back(parse_intervention(c, true, config));
  for (const auto& a : ablations) out.push_back(parse_intervention(a, false, config));
  return out;
}

// Adds the interventions to the session as hooks on the MLP post-activation.
inline std::vector<HookId> apply_interventions(Session& session, const std::vector<NeuronIntervention>& ivs) {
  std::vector<HookId> ids;
  for (const auto& iv : ivs) {
    ids.push_back(iv.clamp_value ? session.clamp_neurons(iv.layer, {iv.neuron}, *iv.clamp_value)
                                 : session.ablate_neurons(iv.layer, {iv.neuron}));
  }
  return ids;
}

}  // namespace neuronlens::cli

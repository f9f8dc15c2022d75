// `neuronlens lens MODEL -p TEXT`: the logit lens. The residual stream
// leaving every layer, at every prompt position, is put through the model's
// final norm and LM head, and its top tokens are shown: what the model would
// predict next if it stopped at that layer. The last layer's row is the
// model's real prediction; with --clamp / --ablate-head ..., the lens of the
// intervened model. The lens itself is neuronlens/lens.h; this prints it.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "format.h"
#include "neuronlens/error.h"
#include "neuronlens/lens.h"
#include "neuronlens/text_model.h"
#include "text_model.h"

namespace neuronlens::cli {
namespace {

struct LensCommandOptions {
  std::string model;
  std::string prompt;
  bool chat = false;
  int top = 5;
  bool json = false;
  InterventionOptions interventions;
};

int run_lens(const LensCommandOptions& opt) {
  if (opt.top < 1 || opt.top > 100) throw bad_input("--top must be 1 to 100, got " + std::to_string(opt.top));
  const TextModel tm = TextModel::load(opt.model);
  const ModelConfig& config = tm.model.config();
  const std::vector<int32_t> prompt = tm.prompt_tokens(opt.prompt, opt.chat);
  const auto n_positions = static_cast<int64_t>(prompt.size());
  const LensResult lens = logit_lens(tm.model, prompt, opt.top, parse_interventions(opt.interventions, config));

  const Vocabulary& vocab = tm.tokenizer.vocabulary();
  auto text_of = [&](int32_t id) { return vocab.token(id).display; };
  if (opt.json) {
    nlohmann::json j;
    j["positions"] = nlohmann::json::array();
    for (int64_t pos = 0; pos < n_positions; ++pos) {
      nlohmann::json p;
      p["position"] = pos;
      p["token"] = text_of(prompt[static_cast<size_t>(pos)]);
      p["layers"] = nlohmann::json::array();
      for (int64_t layer = 0; layer < config.n_layers; ++layer) {
        const NeuronDecoding& d = lens.at(layer, pos);
        nlohmann::json top = nlohmann::json::array();
        for (size_t k = 0; k < d.top_ids.size(); ++k) {
          top.push_back({{"id", d.top_ids[k]}, {"text", text_of(d.top_ids[k])},
                         {"p", std::exp(d.top_logits[k] - d.logsumexp)}});
        }
        p["layers"].push_back({{"layer", layer}, {"top", top}});
      }
      j["positions"].push_back(p);
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  // One block per position: a row per layer with its top tokens.
  for (int64_t pos = 0; pos < n_positions; ++pos) {
    std::printf("position %lld %s\n", static_cast<long long>(pos),
                quote_token(text_of(prompt[static_cast<size_t>(pos)])).c_str());
    for (int64_t layer = 0; layer < config.n_layers; ++layer) {
      const NeuronDecoding& d = lens.at(layer, pos);
      std::printf("  layer %3lld ", static_cast<long long>(layer));
      for (size_t k = 0; k < d.top_ids.size(); ++k) {
        std::printf(" %s %.3f", quote_token(text_of(d.top_ids[k])).c_str(), std::exp(d.top_logits[k] - d.logsumexp));
      }
      std::printf("\n");
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace

Runner add_lens_command(CLI::App& app) {
  auto opt = std::make_shared<LensCommandOptions>();
  CLI::App* cmd = app.add_subcommand("lens", "Logit lens: each layer's residual stream decoded by the LM head");
  cmd->add_option("model", opt->model, "Model (GGUF file / Hugging Face folder)")->required();
  cmd->add_option("-p,--prompt", opt->prompt, "Prompt text")->required();
  cmd->add_flag("--chat", opt->chat, "Wrap the prompt in the model's chat template as a user message");
  cmd->add_option("--top", opt->top, "Top tokens per layer and position")->capture_default_str();
  add_intervention_options(cmd, opt->interventions);
  cmd->add_flag("--json", opt->json, "Print JSON");
  return [opt] { return run_lens(*opt); };
}

}  // namespace neuronlens::cli

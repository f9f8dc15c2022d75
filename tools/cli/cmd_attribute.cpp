// `neuronlens attribute MODEL -p TEXT --token T [--vs T2]`: direct logit
// attribution at the last prompt position. The logit of T (or T − T2) split
// into the embedding's part, every attention head's and every MLP neuron's,
// through the final norm with its scale frozen; per-layer totals, the top
// parts (with their decoded tokens from --atlas), the remainder, and the
// check of the largest head by ablation. The analysis is
// neuronlens/attribution.h; this prints it.
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "commands.h"
#include "format.h"
#include "neuronlens/atlas.h"
#include "neuronlens/attribution.h"
#include "neuronlens/probe.h"
#include "option_error.h"
#include "server/circuits_json.h"
#include "text_model.h"

namespace neuronlens::cli {
namespace {

constexpr int kAtlasTokens = 5;

struct AttributeCommandOptions {
  std::string model;
  std::string prompt;
  bool chat = false;
  std::string token;
  std::string versus;
  int64_t top = 20;
  std::string atlas;
  std::string plot;
  bool json = false;
  InterventionOptions interventions;
};

// A part's decoded tokens, from an atlas: what a neuron's down vector (what
// it writes) stands for, where that layer's down vectors are mapped; what a
// head's leading OV direction writes, where its heads are mapped. Empty
// otherwise.
std::vector<int32_t> written_tokens(const Atlas* atlas, const LogitComponent& c) {
  if (atlas == nullptr || c.kind == ComponentKind::Embedding) return {};
  std::vector<int32_t> ids;
  if (c.kind == ComponentKind::Head) {
    const std::vector<AtlasHeadDirection> dirs = atlas->head(HeadCircuit::Ov, c.layer, c.index);
    if (!dirs.empty()) ids = dirs[0].sides[0].top_ids;
  } else if (const std::optional<AtlasNeuron> n = atlas->neuron(VectorKind::Down, c.layer, c.index)) {
    ids = n->top_ids;
  }
  if (ids.size() > kAtlasTokens) ids.resize(kAtlasTokens);
  return ids;
}

std::string component_label(const LogitComponent& c) {
  if (c.kind == ComponentKind::Embedding) return "embedding";
  return std::string(component_kind_name(c.kind)) + " " + std::to_string(c.layer) + ":" + std::to_string(c.index);
}

int run_attribute(const AttributeCommandOptions& opt) {
  const TextModel tm = TextModel::load(opt.model);
  const ModelConfig& config = tm.model.config();
  if (opt.top < 0) throw bad_input("--top: must be 0 (every part) or more, got " + std::to_string(opt.top));
  const Interventions interventions = parse_interventions(opt.interventions, config);
  const int32_t token = for_option("--token", [&] { return single_token_id(tm.tokenizer, opt.token); });
  std::optional<int32_t> versus;
  if (!opt.versus.empty()) versus = for_option("--vs", [&] { return single_token_id(tm.tokenizer, opt.versus); });
  std::unique_ptr<Atlas> atlas;
  if (!opt.atlas.empty()) {
    atlas = std::make_unique<Atlas>(Atlas::open(opt.atlas));
    const AtlasSettings& s = atlas->settings();
    if (s.n_layers != config.n_layers || s.d_ffn != config.d_ffn || s.vocab_size != config.vocab_size) {
      throw bad_input("--atlas: " + opt.atlas + " is of another model (" + s.model_name + ": " +
                      std::to_string(s.n_layers) + " layers, " + std::to_string(s.d_ffn) + " neurons a layer)");
    }
  }
  const std::vector<int32_t> prompt = tm.prompt_tokens(opt.prompt, opt.chat);
  const Attribution a = attribute_logit(tm.model, prompt, token, versus, interventions);

  const Vocabulary& vocab = tm.tokenizer.vocabulary();
  auto text_of = [&](int32_t id) { return vocab.token(id).display; };
  const std::string target =
      quote_token(text_of(token)) + (versus ? " − " + quote_token(text_of(*versus)) : std::string());
  const std::vector<LogitComponent> top = a.top(opt.top);
  const auto& check = a.top_head_check;
  if (!opt.plot.empty()) {
    write_text_file("--plot", opt.plot, attribution_plot_svg(a, "logit of " + target + " by layer: " + opt.prompt));
  }

  if (opt.json) {
    nlohmann::json j = server::attribution_json(a, opt.top, text_of, [&](const LogitComponent& c) {
      std::vector<std::string> texts;
      for (int32_t id : written_tokens(atlas.get(), c)) texts.push_back(atlas->token_text(id));
      return texts;
    });
    j["prompt_tokens"] = prompt.size();
    j["interventions"] = opt.interventions.described();
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::printf("logit of %s at position %lld (after %s): %.6g (the model's%s)\n", target.c_str(),
              static_cast<long long>(a.position), quote_token(text_of(prompt.back())).c_str(), a.logit,
              config.final_softcap > 0 ? ", before its final soft-cap" : "");
  std::printf("sum of the parts: %.6g   remainder: %.3g   final norm scale 1/rms(x), frozen: %.6g\n", a.sum(),
              a.remainder(), a.final_scale);
  std::printf("\n%6s %12s %12s\n", "layer", "attention", "MLP");
  std::printf("%6s %12.4f %12s\n", "emb", a.embedding, "");
  for (size_t l = 0; l < a.layers.size(); ++l) {
    std::printf("%6zu %+12.4f %+12.4f\n", l, a.layers[l].attention, a.layers[l].mlp);
  }
  std::printf("\ntop %zu parts by |contribution|:\n", top.size());
  for (const LogitComponent& c : top) {
    std::string tokens;
    for (int32_t id : written_tokens(atlas.get(), c)) tokens += " " + quote_token(atlas->token_text(id));
    std::printf("  %-16s %+10.4f%s\n", component_label(c).c_str(), c.contribution, tokens.c_str());
  }
  std::printf("\ncheck: ablating head %lld:%lld (attributed %+.4g) moves the logit by %+.4g", static_cast<long long>(check.layer),
              static_cast<long long>(check.head), check.attributed, check.change);
  if (check.attributed != 0) std::printf(" (%.0f%% of the attributed part)", 100 * check.change / check.attributed);
  std::printf("\n");
  if (!opt.plot.empty()) std::printf("plot written to %s\n", opt.plot.c_str());
  return 0;
}

}  // namespace

Runner add_attribute_command(CLI::App& app) {
  auto opt = std::make_shared<AttributeCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "attribute", "Direct logit attribution: a token's logit split into the embedding, heads and neurons");
  cmd->add_option("model", opt->model, "Model (GGUF file / Hugging Face folder)")->required();
  cmd->add_option("-p,--prompt", opt->prompt, "Prompt text")->required();
  cmd->add_flag("--chat", opt->chat, "Wrap the prompt in the model's chat template as a user message");
  cmd->add_option("--token", opt->token, "The next token whose logit to attribute, e.g. \" Paris\" (one token)")
      ->required();
  cmd->add_option("--vs", opt->versus, "Attribute logit(token) - logit(this token) instead");
  cmd->add_option("--top", opt->top, "Parts to list, largest |contribution| first (0: all)")->capture_default_str();
  cmd->add_option("--atlas", opt->atlas,
                  "An atlas of the same model: list each neuron's decoded down tokens (and each head's OV output "
                  "tokens, where it maps ov)");
  cmd->add_option("--plot", opt->plot, "Write an SVG of the per-layer contributions (attention vs MLP)");
  add_intervention_options(cmd, opt->interventions);
  cmd->add_flag("--json", opt->json, "Print JSON");
  return [opt] { return run_attribute(*opt); };
}

}  // namespace neuronlens::cli

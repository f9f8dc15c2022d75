// `neuronlens patch MODEL --clean TEXT --corrupt TEXT --token T [--vs T2]`:
// activation patching (causal tracing). Each site of the clean run (the
// residual stream and the MLP output at every layer and position, every
// head's output at all positions) is copied into the corrupted run in turn,
// and the share of the clean − corrupted logit difference it restores is
// printed as a layer × position table, with --json and an SVG heat map
// (--plot). The analysis is neuronlens/patching.h; this prints it.
#include <algorithm>
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
#include "neuronlens/neuron_map.h"
#include "neuronlens/patching.h"
#include "neuronlens/probe.h"
#include "neuronlens/text_model.h"
#include "option_error.h"
#include "progress_bar.h"
#include "server/circuits_json.h"

namespace neuronlens::cli {
namespace {

struct PatchCommandOptions {
  std::string model;
  std::string clean;
  std::string corrupt;
  bool chat = false;
  std::string token;
  std::string versus;
  std::string layers;
  std::string plot;
  bool json = false;
};

// A layer × position table of percentages, the tokens as column heads.
void print_grid(const char* title, const std::vector<double>& shares, const std::vector<int64_t>& layers,
                int64_t cols, const std::vector<std::string>& heads) {
  std::printf("\n%s (%% of the difference restored; rows: layers)\n%6s", title, "");
  for (int64_t p = 0; p < cols; ++p) {
    std::string h = heads[static_cast<size_t>(p)];
    if (h.size() > 8) h = h.substr(0, 7) + "…";
    std::printf(" %8s", h.c_str());
  }
  std::printf("\n");
  for (size_t k = 0; k < layers.size(); ++k) {
    std::printf("%6lld", static_cast<long long>(layers[k]));
    for (int64_t p = 0; p < cols; ++p) std::printf(" %7.1f%%", 100 * shares[k * static_cast<size_t>(cols) + static_cast<size_t>(p)]);
    std::printf("\n");
  }
}

int run_patch(const PatchCommandOptions& opt) {
  const TextModel tm = TextModel::load(opt.model);
  const int32_t token = for_option("--token", [&] { return single_token_id(tm.tokenizer, opt.token); });
  std::optional<int32_t> versus;
  if (!opt.versus.empty()) versus = for_option("--vs", [&] { return single_token_id(tm.tokenizer, opt.versus); });
  std::vector<int64_t> layers;
  if (!opt.layers.empty()) {
    layers = for_option("--layers", [&] { return parse_layer_list(opt.layers, tm.model.config().n_layers); });
  }
  const std::vector<int32_t> clean = tm.prompt_tokens(opt.clean, opt.chat);
  const std::vector<int32_t> corrupt = tm.prompt_tokens(opt.corrupt, opt.chat);
  if (clean.size() != corrupt.size()) {
    throw bad_input("--clean is " + std::to_string(clean.size()) + " tokens and --corrupt " +
                    std::to_string(corrupt.size()) +
                    ": activation patching needs prompts of the same token count (change the corrupted subject to "
                    "one of the same length)");
  }
  const Vocabulary& vocab = tm.tokenizer.vocabulary();
  auto text_of = [&](int32_t id) { return vocab.token(id).display; };

  ProgressBar bar("patch", "passes");
  const PatchingResult r =
      patch_activations(tm.model, clean, corrupt, token, versus, layers,
                        [&](int64_t done, int64_t total) { bar.update(done, total); });
  const double seconds = bar.finish();

  std::vector<std::string> labels;
  for (size_t p = 0; p < clean.size(); ++p) {
    labels.push_back(clean[p] == corrupt[p] ? text_of(clean[p]) : text_of(clean[p]) + "/" + text_of(corrupt[p]));
  }
  const std::string target =
      quote_token(text_of(token)) + (versus ? " − " + quote_token(text_of(*versus)) : std::string());
  if (!opt.plot.empty()) {
    write_text_file("--plot", opt.plot,
                    patching_heatmap_svg(r, labels, "patching " + opt.clean + " → " + opt.corrupt + ": " + target));
  }

  if (opt.json) {
    const nlohmann::json j = server::patching_json(r, clean, corrupt, text_of);
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::printf("metric: logit of %s at the last position: clean %.4f, corrupted %.4f (difference %.4f)\n",
              target.c_str(), r.clean, r.corrupt, r.clean - r.corrupt);
  if (r.clean == r.corrupt) std::printf("the prompts give the same metric: there is nothing to restore\n");
  print_grid("residual stream leaving each layer", r.residual, r.layers, r.n_tokens, labels);
  print_grid("MLP output", r.mlp, r.layers, r.n_tokens, labels);
  std::vector<size_t> order(r.heads.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  const size_t shown = std::min<size_t>(10, order.size());
  std::partial_sort(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(shown), order.end(),
                    [&](size_t a, size_t b) { return std::fabs(r.heads[a]) > std::fabs(r.heads[b]); });
  std::printf("\nheads whose output (at every position) restores most:\n");
  for (size_t k = 0; k < shown; ++k) {
    const size_t i = order[k];
    std::printf("  head %lld:%lld %7.1f%%\n", static_cast<long long>(r.layers[i / static_cast<size_t>(r.n_heads)]),
                static_cast<long long>(static_cast<int64_t>(i) % r.n_heads), 100 * r.heads[i]);
  }
  const auto n_rows = static_cast<int64_t>(r.layers.size());
  std::printf("\n%lld passes in %s\n", static_cast<long long>(patching_passes(n_rows, r.n_tokens, r.n_heads) + 2),
              human_seconds(seconds).c_str());
  if (!opt.plot.empty()) std::printf("heat map written to %s\n", opt.plot.c_str());
  return 0;
}

}  // namespace

Runner add_patch_command(CLI::App& app) {
  auto opt = std::make_shared<PatchCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "patch", "Activation patching: which layers, positions and heads carry a prediction (causal tracing)");
  cmd->add_option("model", opt->model, "Model (GGUF file / Hugging Face folder)")->required();
  cmd->add_option("--clean", opt->clean, "The prompt that gives the prediction")->required();
  cmd->add_option("--corrupt", opt->corrupt, "The same prompt with its subject changed (same token count)")
      ->required();
  cmd->add_option("--token", opt->token, "The next token whose logit is measured, e.g. \" Paris\" (one token)")
      ->required();
  cmd->add_option("--vs", opt->versus, "Measure logit(token) - logit(this token) instead");
  cmd->add_flag("--chat", opt->chat, "Wrap both prompts in the model's chat template as a user message");
  cmd->add_option("--layers", opt->layers, "Patch only these layers, e.g. 0-5,20 (default: all)");
  cmd->add_option("--plot", opt->plot, "Write an SVG heat map (layer x position, and layer x head)");
  cmd->add_flag("--json", opt->json, "Print JSON");
  return [opt] { return run_patch(*opt); };
}

}  // namespace neuronlens::cli

// `neuronlens probe MODEL -p TEXT --tokens " dog"`: the next-token
// probabilities of chosen tokens, and the top 10, without and with an
// intervention, side by side. With --show-neuron L:I it also prints that
// neuron's MLP post-activation (act(gate)*up, the value --clamp fixes) at
// every prompt token of the plain model, and the largest |activation|.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "commands.h"
#include "format.h"
#include "neuronlens/probe.h"
#include "neuronlens/sampling.h"
#include "option_error.h"
#include "text_model.h"

namespace neuronlens::cli {
namespace {

constexpr int kTop = 10;

struct ProbeCommandOptions {
  std::string model;
  std::string prompt;
  std::vector<std::string> tokens;
  bool chat = false;
  InterventionOptions interventions;
  bool json = false;
  std::vector<std::string> show_neurons;  // "L:I"
  std::string weights = "quantized";
};

int run_probe(const ProbeCommandOptions& opt) {
  const TextModel tm = TextModel::load(opt.model);
  const auto interventions = parse_interventions(opt.interventions, tm.model.config());
  const Vocabulary& vocab = tm.tokenizer.vocabulary();
  std::vector<int32_t> probe_ids;
  for (const std::string& text : opt.tokens) {
    probe_ids.push_back(for_option("--tokens", [&] { return single_token_id(tm.tokenizer, text); }));
  }
  const std::vector<int32_t> prompt = tm.prompt_tokens(opt.prompt, opt.chat);
  // --show-neuron: range-checked like --ablate, recorded at mlp_act during
  // the plain pass.
  std::vector<FfnNeuron> shown;
  for (const auto& s : opt.show_neurons) {
    shown.push_back(for_option("--show-neuron", [&] { return parse_ffn_neuron(s, tm.model.config()); }));
  }

  Session session(tm.model, SessionOptions{for_option("--weights", [&] { return parse_weight_format(opt.weights); })});
  const ProbeResult probe = probe_next_token(session, prompt, interventions, shown);
  const std::vector<double>& before = probe.without;
  const std::vector<double>& after = probe.with;
  const auto top_before = top_token_ids(before, kTop);
  const auto top_after = top_token_ids(after, kTop);
  auto text_of = [&](int32_t id) { return vocab.token(id).display; };
  // Activation of shown neuron k at prompt position p.
  auto activation = [&](size_t k, size_t p) { return probe.activations[k][p]; };
  auto max_abs = [&](size_t k) {
    double m = 0;
    for (float a : probe.activations[k]) m = std::max(m, std::fabs(double(a)));
    return m;
  };

  if (opt.json) {
    nlohmann::json j;
    j["prompt_tokens"] = prompt.size();
    j["interventions"] = nlohmann::json::array();
    for (const std::string& iv : opt.interventions.described()) j["interventions"].push_back(iv);
    j["tokens"] = nlohmann::json::array();
    for (size_t i = 0; i < probe_ids.size(); ++i) {
      const auto id = static_cast<size_t>(probe_ids[i]);
      j["tokens"].push_back(
          {{"text", opt.tokens[i]}, {"id", probe_ids[i]}, {"p_without", before[id]}, {"p_with", after[id]}});
    }
    auto top_json = [&](const std::vector<int32_t>& ids, const std::vector<double>& p) {
      nlohmann::json a = nlohmann::json::array();
      for (int32_t id : ids) a.push_back({{"id", id}, {"text", text_of(id)}, {"p", p[static_cast<size_t>(id)]}});
      return a;
    };
    j["top_without"] = top_json(top_before, before);
    j["top_with"] = top_json(top_after, after);
    if (!shown.empty()) {
      j["neurons"] = nlohmann::json::array();
      for (size_t k = 0; k < shown.size(); ++k) {
        nlohmann::json acts = nlohmann::json::array();
        for (size_t pos = 0; pos < prompt.size(); ++pos) {
          acts.push_back({{"position", static_cast<int64_t>(pos)},
                          {"token", text_of(prompt[pos])},
                          {"activation", activation(k, pos)}});
        }
        j["neurons"].push_back(
            {{"layer", shown[k].layer}, {"neuron", shown[k].neuron}, {"max_abs", max_abs(k)}, {"activations", acts}});
      }
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  std::printf("next-token probabilities after %zu prompt tokens", prompt.size());
  if (interventions.empty()) std::printf(" (no intervention: both columns are the plain model)");
  std::printf("\n\n%-20s %8s %12s %12s\n", "token", "id", "without", "with");
  for (size_t i = 0; i < probe_ids.size(); ++i) {
    const auto id = static_cast<size_t>(probe_ids[i]);
    std::printf("%-20s %8d %12.6f %12.6f\n", quote_token(opt.tokens[i]).c_str(), probe_ids[i], before[id], after[id]);
  }
  std::printf("\n%-4s %-24s %10s   %-24s %10s\n", "rank", "top without", "p", "top with", "p");
  for (size_t r = 0; r < top_before.size(); ++r) {
    std::printf("%-4zu %-24s %10.6f   %-24s %10.6f\n", r + 1, quote_token(text_of(top_before[r])).c_str(),
                before[static_cast<size_t>(top_before[r])], quote_token(text_of(top_after[r])).c_str(),
                after[static_cast<size_t>(top_after[r])]);
  }
  for (size_t k = 0; k < shown.size(); ++k) {
    std::printf("\nneuron %lld:%lld activation (mlp_act, plain model) per prompt token\n",
                static_cast<long long>(shown[k].layer), static_cast<long long>(shown[k].neuron));
    std::printf("%-5s %-24s %12s\n", "pos", "token", "activation");
    for (size_t pos = 0; pos < prompt.size(); ++pos) {
      std::printf("%-5lld %-24s %12.6f\n", static_cast<long long>(pos), quote_token(text_of(prompt[pos])).c_str(),
                  activation(k, pos));
    }
    std::printf("max |activation|: %.6f\n", max_abs(k));
  }
  return 0;
}

}  // namespace

Runner add_probe_command(CLI::App& app) {
  auto opt = std::make_shared<ProbeCommandOptions>();
  CLI::App* cmd = app.add_subcommand("probe", "Next-token probabilities without and with an intervention");
  cmd->add_option("model", opt->model, "Model (GGUF file / Hugging Face folder)")->required();
  cmd->add_option("-p,--prompt", opt->prompt, "Prompt text")->required();
  cmd->add_option("--tokens", opt->tokens, "Token to report, e.g. \" dog\" (repeatable; each one token)")->required();
  cmd->add_flag("--chat", opt->chat, "Wrap the prompt in the model's chat template as a user message");
  add_intervention_options(cmd, opt->interventions);
  add_weights_option(cmd, opt->weights);
  cmd->add_option("--show-neuron", opt->show_neurons,
                  "Also print LAYER:NEURON's MLP post-activation at each prompt token (plain model; repeatable)");
  cmd->add_flag("--json", opt->json, "Print JSON");
  return [opt] { return run_probe(*opt); };
}

}  // namespace neuronlens::cli

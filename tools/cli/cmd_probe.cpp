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
#include "neuronlens/sampling.h"
#include "text_model.h"

namespace neuronlens::cli {
namespace {

constexpr int kTop = 10;

struct ProbeCommandOptions {
  std::string model;
  std::string prompt;
  std::vector<std::string> tokens;
  bool chat = false;
  std::vector<std::string> clamps;
  std::vector<std::string> ablations;
  bool json = false;
  std::vector<std::string> show_neurons;  // "L:I"
};

int run_probe(const ProbeCommandOptions& opt) {
  const TextModel tm = TextModel::load(opt.model);
  const auto interventions = parse_interventions(opt.clamps, opt.ablations, tm.model.config());
  const Vocabulary& vocab = tm.tokenizer.vocabulary();
  std::vector<int32_t> probe_ids;
  for (const std::string& text : opt.tokens) {
    const auto ids = tm.tokenizer.encode(text, false);
    if (ids.size() != 1) {
      throw Error("--tokens: '" + text + "' is " + std::to_string(ids.size()) +
                  " tokens, not one (probe a single token, e.g. its first piece)");
    }
    probe_ids.push_back(ids[0]);
  }
  const std::vector<int32_t> prompt = tm.prompt_tokens(opt.prompt, opt.chat);

  // --show-neuron: parsed like --ablate (range-checked), recorded at mlp_act
  // during the plain pass.
  std::vector<NeuronIntervention> shown;
  for (const auto& s : opt.show_neurons) {
    try {
      shown.push_back(parse_intervention(s, false, tm.model.config()));
    } catch (const Error& e) {
      std::string message = e.what();
      const std::string from = "--ablate";
      if (message.rfind(from, 0) == 0) message = "--show-neuron" + message.substr(from.size());
      throw Error(message);
    }
  }

  Session session(tm.model);
  std::vector<std::shared_ptr<ActivationRecord>> records;
  std::vector<HookId> record_hooks;
  for (const auto& n : shown) {
    HookId id = 0;
    records.push_back(session.record(HookPoint::MlpAct, n.layer, &id));
    record_hooks.push_back(id);
  }
  const std::vector<double> before = softmax_probabilities(session.forward(prompt, LogitsFor::LastToken));
  for (HookId id : record_hooks) session.remove_hook(id);
  session.reset();
  apply_interventions(session, interventions);
  const std::vector<double> after = softmax_probabilities(session.forward(prompt, LogitsFor::LastToken));
  const auto top_before = top_token_ids(before, kTop);
  const auto top_after = top_token_ids(after, kTop);
  auto text_of = [&](int32_t id) { return vocab.token(id).display; };
  // Activation of shown neuron k at prompt token row r.
  auto activation = [&](size_t k, int64_t r) {
    const ActivationRecord& rec = *records[k];
    return rec.values[static_cast<size_t>(r * rec.width + shown[k].neuron)];
  };
  auto max_abs = [&](size_t k) {
    double m = 0;
    for (int64_t r = 0; r < records[k]->rows(); ++r) m = std::max(m, std::fabs(double(activation(k, r))));
    return m;
  };

  if (opt.json) {
    nlohmann::json j;
    j["prompt_tokens"] = prompt.size();
    j["interventions"] = nlohmann::json::array();
    for (const auto& c : opt.clamps) j["interventions"].push_back("clamp " + c);
    for (const auto& a : opt.ablations) j["interventions"].push_back("ablate " + a);
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
        for (int64_t r = 0; r < records[k]->rows(); ++r) {
          const int32_t tok = prompt[static_cast<size_t>(records[k]->positions[static_cast<size_t>(r)])];
          acts.push_back({{"position", records[k]->positions[static_cast<size_t>(r)]},
                          {"token", text_of(tok)},
                          {"activation", activation(k, r)}});
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
    for (int64_t r = 0; r < records[k]->rows(); ++r) {
      const int64_t pos = records[k]->positions[static_cast<size_t>(r)];
      std::printf("%-5lld %-24s %12.6f\n", static_cast<long long>(pos),
                  quote_token(text_of(prompt[static_cast<size_t>(pos)])).c_str(), activation(k, r));
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
  cmd->add_option("--clamp", opt->clamps, "Fix neuron activation: LAYER:NEURON=VALUE (repeatable)");
  cmd->add_option("--ablate", opt->ablations, "Zero neuron activation: LAYER:NEURON (repeatable)");
  cmd->add_option("--show-neuron", opt->show_neurons,
                  "Also print LAYER:NEURON's MLP post-activation at each prompt token (plain model; repeatable)");
  cmd->add_flag("--json", opt->json, "Print JSON");
  return [opt] { return run_probe(*opt); };
}

}  // namespace neuronlens::cli

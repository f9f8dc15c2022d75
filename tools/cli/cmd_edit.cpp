// `neuronlens edit MODEL --remove CONCEPT -o EDITED.gguf`: concept removal by
// TARS (or zeroing), and --ablate L:I / --scale L:I=F as permanent edits,
// written to a GGUF copy (neuronlens/model_edit.h); then the copy is loaded
// back and, given --prompt / --neutral, the edit is measured: the concept's
// probability after each prompt before and after, a control concept's after
// its own prompts (--control, --control-prompt: is the removal specific?),
// and the KL divergence of the next-token distributions on neutral text
// (neuronlens/edit_effect.h).
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <memory>
#include <optional>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "commands.h"
#include "io/whole_file.h"
#include "format.h"
#include "neuronlens/concept_search.h"
#include "neuronlens/edit_effect.h"
#include "neuronlens/error.h"
#include "neuronlens/model_edit.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/text_model.h"
#include "option_error.h"

namespace neuronlens::cli {
namespace {

struct EditCommandOptions {
  std::string model;
  std::string output;
  std::string remove;
  bool exact = false;
  std::string method = "tars";
  int64_t max_edits = 1;
  std::string kinds = "up";
  std::string layers = "all";
  int refine_steps = 50;
  std::vector<std::string> ablations;  // "L:I"
  std::vector<std::string> scales;     // "L:I=F"
  std::vector<std::string> prompts;
  std::string control;                   // a concept the edit should leave alone
  std::vector<std::string> control_prompts;
  bool chat = false;
  std::string neutral;
  int64_t neutral_tokens = 512;
  bool json = false;
};

std::vector<VectorKind> parse_edit_kinds(const std::string& text) {
  std::vector<VectorKind> kinds;
  std::stringstream in(text);
  for (std::string name; std::getline(in, name, ',');) kinds.push_back(vector_kind_from_name(name));
  if (kinds.empty()) throw bad_input("no kinds given (up, gate, down, comma separated)");
  return kinds;
}

double mean(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x;
  return v.empty() ? 0.0 : s / static_cast<double>(v.size());
}

// One row per prompt (its text cut to fit), p before and after, and the mean.
void print_probabilities(const std::string& title, const std::vector<std::string>& prompts, const EditEffect& effect) {
  std::printf("\n%-48s %12s %12s\n", title.c_str(), "before", "after");
  for (size_t i = 0; i < prompts.size(); ++i) {
    const std::string& p = prompts[i];
    std::printf("%-48s %12.6f %12.6f\n", (p.size() > 46 ? p.substr(0, 43) + "..." : p).c_str(), effect.concept_before[i],
                effect.concept_after[i]);
  }
  std::printf("%-48s %12.6f %12.6f\n", "mean", mean(effect.concept_before), mean(effect.concept_after));
}

int run_edit(const EditCommandOptions& opt) {
  if (opt.remove.empty() && opt.ablations.empty() && opt.scales.empty()) {
    throw bad_input("nothing to edit: give --remove CONCEPT, --ablate LAYER:NEURON or --scale LAYER:NEURON=FACTOR");
  }
  if (!opt.prompts.empty() && opt.remove.empty()) {
    throw bad_input("--prompt measures a concept's probability: give --remove CONCEPT with it");
  }
  if (opt.control.empty() != opt.control_prompts.empty()) {
    throw bad_input("--control and --control-prompt go together: a concept and the prompts after which to measure it");
  }
  const TextModel tm = TextModel::load(opt.model);
  const Model& model = tm.model;
  check_edit_target(model, opt.output);
  const EditMethod method = for_option("--method", [&] { return edit_method_from_name(opt.method); });
  const std::vector<VectorKind> kinds = for_option("--kinds", [&] { return parse_edit_kinds(opt.kinds); });
  const std::vector<int64_t> layers =
      for_option("--layers", [&] { return parse_layer_list(opt.layers, model.config().n_layers); });
  if (opt.neutral_tokens < 2) throw bad_input("--neutral-tokens must be at least 2");

  std::vector<VectorEdit> edits;
  std::vector<std::string> described;
  std::optional<ConceptTokens> concept_tokens;
  std::optional<TargetingVector> target;
  std::vector<EditTarget> targets;
  if (!opt.remove.empty()) {
    concept_tokens = for_option("--remove", [&] { return expand_concept(model.vocab(), opt.remove, opt.exact); });
    if (opt.refine_steps < 0) throw bad_input("--refine-steps must be 0 or more");
    target = concept_targeting_vector(model, concept_tokens->ids, opt.refine_steps);
    targets = for_option("--max-edits", [&] { return rank_edit_targets(model, target->direction, kinds, layers, opt.max_edits); });
    for (const EditTarget& t : targets) edits.push_back(reversal_edit(model, t, target->direction, method));
    described.push_back("remove '" + opt.remove + "' (" + std::string(edit_method_name(method)) + ", " +
                        std::to_string(targets.size()) + " rows)");
  }
  for (const std::string& a : opt.ablations) {
    const FfnNeuron n = for_option("--ablate", [&] { return parse_ffn_neuron(a, model.config()); });
    edits.push_back(ablation_edit(model, n));
    described.push_back("ablate " + a);
  }
  for (const std::string& s : opt.scales) {
    const NeuronIntervention iv = for_option("--scale", [&] { return parse_clamp(s, model.config()); });
    edits.push_back(scale_edit(model, {iv.layer, iv.neuron}, *iv.clamp_value));
    described.push_back("scale " + s);
  }
  std::string description;
  for (size_t i = 0; i < edits.size(); ++i) {
    description += (i ? "; " : "") + vector_edit_name(edits[i]) + " " + edits[i].reason;
  }
  const std::vector<EditedTensor> written = write_edited_gguf(model, edits, description, opt.output);

  // The copy must pass the reader's checks and load as a model.
  const Model edited = Model::load(opt.output);

  std::vector<std::vector<int32_t>> prompt_ids;
  for (const std::string& p : opt.prompts) {
    prompt_ids.push_back(for_option("--prompt", [&] { return tm.prompt_tokens(p, opt.chat); }));
  }
  std::vector<int32_t> neutral;
  if (!opt.neutral.empty()) {
    // The first --neutral-tokens tokens (BOS included where the model wants
    // one), cut to fit the context.
    const std::string text = for_option("--neutral", [&] { return read_whole_file(opt.neutral, ErrorKind::BadInput); });
    if (tm.tokenizer.adds_bos() && tm.tokenizer.bos_id()) neutral.push_back(*tm.tokenizer.bos_id());
    const std::vector<int32_t> body = tm.tokenizer.encode(text, false);
    neutral.insert(neutral.end(), body.begin(), body.end());
    const int64_t keep = std::min(opt.neutral_tokens, model.config().context_length);
    if (static_cast<int64_t>(neutral.size()) > keep) neutral.resize(static_cast<size_t>(keep));
    if (neutral.size() < 2) throw bad_input("--neutral: '" + opt.neutral + "' has no text to measure on");
  }
  std::vector<int32_t> measured_ids;
  if (concept_tokens) measured_ids = concept_tokens->ids;
  const EditEffect effect = measure_edit_effect(model, edited, measured_ids, prompt_ids, neutral);
  // Specificity: the control concept's probability after its own prompts.
  std::optional<ConceptTokens> control_tokens;
  EditEffect control;
  if (!opt.control.empty()) {
    control_tokens = for_option("--control", [&] { return expand_concept(model.vocab(), opt.control, opt.exact); });
    std::vector<std::vector<int32_t>> ids;
    for (const std::string& p : opt.control_prompts) {
      ids.push_back(for_option("--control-prompt", [&] { return tm.prompt_tokens(p, opt.chat); }));
    }
    control = measure_edit_effect(model, edited, control_tokens->ids, ids, {});
  }
  const Vocabulary& vocab = model.vocab();

  if (opt.json) {
    nlohmann::json j;
    j["model"] = opt.model;
    j["output"] = opt.output;
    j["edits"] = nlohmann::json::array();
    for (const VectorEdit& e : edits) {
      j["edits"].push_back({{"kind", vector_kind_name(e.kind)}, {"layer", e.layer}, {"neuron", e.neuron}, {"reason", e.reason}});
    }
    j["tensors"] = nlohmann::json::array();
    for (const EditedTensor& t : written) {
      j["tensors"].push_back({{"name", t.name}, {"from", dtype_name(t.from)}, {"to", dtype_name(t.to)}, {"rows", t.rows_edited}, {"columns", t.columns_edited}});
    }
    if (concept_tokens) {
      j["concept"] = {{"text", opt.remove}, {"tokens", concept_tokens->variants}, {"ids", concept_tokens->ids}};
      j["targeting"] = {{"concept_prob_start", target->concept_prob_start},
                        {"concept_prob", target->concept_prob},
                        {"steps", target->steps}};
      j["targets"] = nlohmann::json::array();
      for (const EditTarget& t : targets) {
        j["targets"].push_back({{"kind", vector_kind_name(t.kind)}, {"layer", t.layer}, {"neuron", t.neuron}, {"cosine", t.cosine}});
      }
    }
    j["prompts"] = nlohmann::json::array();
    for (size_t i = 0; i < prompt_ids.size(); ++i) {
      j["prompts"].push_back({{"text", opt.prompts[i]}, {"before", effect.concept_before[i]}, {"after", effect.concept_after[i]}});
    }
    if (control_tokens) {
      j["control"] = {{"text", opt.control}, {"tokens", control_tokens->variants}, {"prompts", nlohmann::json::array()}};
      for (size_t i = 0; i < opt.control_prompts.size(); ++i) {
        j["control"]["prompts"].push_back(
            {{"text", opt.control_prompts[i]}, {"before", control.concept_before[i]}, {"after", control.concept_after[i]}});
      }
    }
    if (!neutral.empty()) {
      j["neutral"] = {{"positions", effect.kl.size()}, {"kl_mean", effect.kl_mean}, {"kl_median", effect.kl_median},
                      {"kl_max", effect.kl_max}};
    }
    std::cout << j.dump(2) << "\n";
    return 0;
  }

  if (concept_tokens) {
    std::printf("concept '%s': tokens", opt.remove.c_str());
    for (const std::string& v : concept_tokens->variants) std::printf(" %s", quote_token(v).c_str());
    std::printf("\ntargeting vector: p(concept) %.4f from the LM head rows, %.4f after %d refinement steps; decodes to",
                target->concept_prob_start, target->concept_prob, target->steps);
    for (size_t i = 0; i < target->top_ids.size() && i < 5; ++i) {
      std::printf(" %s %.3f", quote_token(vocab.token(target->top_ids[i]).display).c_str(), target->top_probs[i]);
    }
    std::printf("\n");
  }
  std::printf("\n%-5s %-12s %s\n", "kind", "neuron", "edit");
  for (const VectorEdit& e : edits) {
    std::printf("%-5s %-12s %s\n", std::string(vector_kind_name(e.kind)).c_str(),
                (std::to_string(e.layer) + ":" + std::to_string(e.neuron)).c_str(), e.reason.c_str());
  }
  std::printf("\nwrote %s (loads as a model); tensors rewritten:\n", opt.output.c_str());
  for (const EditedTensor& t : written) {
    const std::string what = t.columns_edited > 0 ? std::to_string(t.columns_edited) + " column(s)"
                                                  : std::to_string(t.rows_edited) + " row(s)";
    std::printf("  %-28s %s -> %s, %s edited%s\n", t.name.c_str(), std::string(dtype_name(t.from)).c_str(),
                std::string(dtype_name(t.to)).c_str(), what.c_str(),
                t.from == t.to ? "" : " (no quantiser for the type: stored as F16)");
  }
  if (!prompt_ids.empty()) print_probabilities("p(concept) after the prompt", opt.prompts, effect);
  if (control_tokens) print_probabilities("p(" + opt.control + ") after the prompt (control)", opt.control_prompts, control);
  if (!neutral.empty()) {
    std::printf("\nneutral text, %zu positions: KL(before || after) mean %.6f, median %.6f, max %.6f nats\n",
                effect.kl.size(), effect.kl_mean, effect.kl_median, effect.kl_max);
  }
  return 0;
}

}  // namespace

Runner add_edit_command(CLI::App& app) {
  auto opt = std::make_shared<EditCommandOptions>();
  CLI::App* cmd = app.add_subcommand("edit", "Remove a concept (TARS) or ablate/scale neurons, written to a GGUF copy");
  cmd->add_option("model", opt->model, "GGUF model file")->required();
  cmd->add_option("-o,--output", opt->output, "Edited GGUF to write (not the model file)")->required();
  cmd->add_option("--remove", opt->remove, "Concept to remove, e.g. dog (its single-token forms)");
  cmd->add_flag("--exact", opt->exact, "Use the concept's text as given, no variants");
  cmd->add_option("--method", opt->method, "tars (replace rows by the reversed targeting vector) or zero")
      ->capture_default_str();
  cmd->add_option("--max-edits", opt->max_edits, "Vectors to replace: the most cosine-similar to the targeting vector")
      ->capture_default_str();
  cmd->add_option("--kinds", opt->kinds, "Vectors searched: up and gate rows (what a neuron reads, the paper's), down columns (what it writes)")->capture_default_str();
  cmd->add_option("--layers", opt->layers, "Layers searched, e.g. 3-10, or all")->capture_default_str();
  cmd->add_option("--refine-steps", opt->refine_steps, "Gradient steps refining the targeting vector (0: the LM head rows)")
      ->capture_default_str();
  cmd->add_option("--ablate", opt->ablations, "Zero neuron LAYER:NEURON permanently (its up row; repeatable)");
  cmd->add_option("--scale", opt->scales, "Scale neuron LAYER:NEURON=FACTOR permanently (its up row; repeatable)");
  cmd->add_option("-p,--prompt", opt->prompts, "Prompt after which to measure p(concept) before and after (repeatable)");
  cmd->add_option("--control", opt->control, "A concept the edit should leave alone, e.g. cat (specificity)");
  cmd->add_option("--control-prompt", opt->control_prompts, "Prompt after which to measure p(control) (repeatable)");
  cmd->add_flag("--chat", opt->chat, "Wrap each prompt in the model's chat template");
  cmd->add_option("--neutral", opt->neutral, "Text file on which to measure KL(before || after)");
  cmd->add_option("--neutral-tokens", opt->neutral_tokens, "Tokens of the neutral text used")->capture_default_str();
  cmd->add_flag("--json", opt->json, "Print JSON");
  return [opt] { return run_edit(*opt); };
}

}  // namespace neuronlens::cli

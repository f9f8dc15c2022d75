// `neuronlens experiment clamp MODEL --neuron L:I --prompt TEXT --concept REGEX`:
// the clamp experiment as a measured sweep (neuronlens/clamp_experiment.h):
// a table, --json, --plot.
#include <omp.h>

#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "commands.h"
#include "format.h"
#include "neuronlens/clamp_experiment.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "option_error.h"
#include "progress_bar.h"
#include "text_model.h"

namespace neuronlens::cli {
namespace {

struct ExperimentOptions {
  std::string model;
  std::string neuron;
  std::string values = "auto";
  std::string atlas;
  std::vector<std::string> tokens;
  std::string plot;
  bool json = false;
  bool no_chat = false;
  int examples = 2;
  int threads = 0;
  std::string weights = "quantized";
  ClampExperimentOptions run;
};

std::vector<double> parse_values(const std::string& text) {
  std::vector<double> out;
  if (text == "auto") return out;
  std::stringstream in(text);
  std::string part;
  while (std::getline(in, part, ',')) {
    size_t used = 0;
    double v = 0;
    try {
      v = std::stod(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || !std::isfinite(v)) {
      throw bad_input("'" + part + "' is not a number (give auto or V1,V2,...)");
    }
    out.push_back(v);
  }
  if (out.empty()) throw bad_input("no value given (give auto or V1,V2,...)");
  return out;
}

nlohmann::json run_json(const ClampRun& r, const std::vector<std::string>& tokens) {
  nlohmann::json answers = nlohmann::json::array();
  for (const ScoredAnswer& a : r.answers) {
    answers.push_back({{"seed", a.seed}, {"text", a.text}, {"concept", a.concept_match},
                       {"mean_logprob", a.mean_logprob}, {"repeated", a.repeated}});
  }
  nlohmann::json probe = nlohmann::json::object();
  for (size_t i = 0; i < tokens.size() && i < r.probe.size(); ++i) probe[tokens[i]] = r.probe[i];
  return {{"value", r.value ? nlohmann::json(*r.value) : nlohmann::json()}, {"factor", r.factor},
          {"concept_hits", r.concept_hits}, {"concept_rate", r.concept_rate}, {"mean_logprob", r.mean_logprob},
          {"repeated", r.repeated}, {"fluent", r.fluent}, {"probe", probe}, {"answers", answers}};
}

std::string number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.4g", v);
  return buf;
}

std::string one_line(const std::string& text) {
  std::string out;
  for (char ch : text) out += ch == '\n' ? ' ' : ch;
  return out;
}

int run_experiment_clamp(ExperimentOptions opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const TextModel tm = TextModel::load(opt.model);
  const size_t colon = opt.neuron.find(':');
  if (colon == std::string::npos) throw bad_input("--neuron: expected LAYER:INDEX, e.g. 29:808");
  opt.run.layer = for_option("--neuron", [&] { return parse_nonnegative_integer(opt.neuron.substr(0, colon), "layer"); });
  opt.run.neuron = for_option("--neuron", [&] { return parse_nonnegative_integer(opt.neuron.substr(colon + 1), "neuron"); });
  opt.run.values = for_option("--values", [&] { return parse_values(opt.values); });
  opt.run.probe_tokens = opt.tokens;
  opt.run.weights = for_option("--weights", [&] { return parse_weight_format(opt.weights); });
  opt.run.chat = !opt.no_chat;
  if (opt.run.chat && !tm.chat) throw bad_input("the model has no chat template neuronlens knows: use --no-chat");
  std::optional<Atlas> atlas;
  if (!opt.atlas.empty()) atlas.emplace(Atlas::open(opt.atlas));
  ProgressBar bar("generating", "answers");
  const ClampExperiment e = run_clamp_experiment(tm, opt.run, atlas ? &*atlas : nullptr,
                                                 [&](int64_t done, int64_t total) { bar.update(done, total); });
  bar.finish();
  if (!opt.plot.empty()) {
    write_text_file("--plot", opt.plot,
                    clamp_experiment_svg(e, "clamp " + opt.neuron + ": concept /" + opt.run.concept_regex + "/i"));
  }
  if (opt.json) {
    nlohmann::json runs = nlohmann::json::array();
    for (const ClampRun& r : e.runs) runs.push_back(run_json(r, e.probe_tokens));
    std::cout << nlohmann::json{{"neuron", opt.neuron}, {"prompt", opt.run.prompt}, {"concept", opt.run.concept_regex},
                                {"seeds", opt.run.seeds}, {"temperature", opt.run.temperature},
                                {"max_tokens", opt.run.max_tokens}, {"max_abs", e.max_abs},
                                {"max_abs_source", e.max_abs_source}, {"baseline", run_json(e.baseline, e.probe_tokens)},
                                {"runs", runs}, {"best", e.best ? nlohmann::json(*e.runs[*e.best].value) : nlohmann::json()}}
                     // An answer may end inside a character, or the model may write bytes that are not UTF-8.
                     .dump(2, ' ', false, nlohmann::json::error_handler_t::replace)
              << "\n";
    return 0;
  }
  std::printf("clamp %s, concept /%s/i, %lld seeds at temperature %g, %lld tokens; max |act| %.4g (%s)\n",
              opt.neuron.c_str(), opt.run.concept_regex.c_str(), static_cast<long long>(opt.run.seeds),
              opt.run.temperature, static_cast<long long>(opt.run.max_tokens), e.max_abs,
              e.max_abs_source == "record" ? "the atlas's record" : "over the unclamped answers");
  std::printf("  %10s %8s %9s %12s %10s %6s", "clamp", "x max", "concept", "log-p/token", "repeated", "fluent");
  for (const std::string& t : e.probe_tokens) std::printf(" %12s", quote_token(t).c_str());
  std::printf("\n");
  const auto row = [&](const ClampRun& r, bool best) {
    std::printf("  %10s %8s %4lld/%-4zu %12.3f %9.1f%% %6s", r.value ? number(*r.value).c_str() : "none",
                r.value ? (number(r.factor) + "x").c_str() : "-",
                static_cast<long long>(r.concept_hits), r.answers.size(), r.mean_logprob, r.repeated * 100,
                r.value ? (r.fluent ? "yes" : "no") : "-");
    for (double p : r.probe) std::printf(" %12.4g", p);
    std::printf("%s\n", best ? "   <- best" : "");
  };
  row(e.baseline, false);
  for (size_t i = 0; i < e.runs.size(); ++i) row(e.runs[i], e.best && *e.best == i);
  std::printf("best: %s (the highest concept rate whose answers stay within %.2f nats/token and %.0f%% repeated "
              "n-grams of the unclamped ones)\n",
              e.best ? number(*e.runs[*e.best].value).c_str() : "none", opt.run.logprob_margin,
              opt.run.repetition_margin * 100);
  if (opt.examples > 0 && e.best) {
    const ClampRun& b = e.runs[*e.best];
    for (int i = 0; i < opt.examples && i < static_cast<int>(b.answers.size()); ++i) {
      std::printf("  [seed %llu] %s\n", static_cast<unsigned long long>(b.answers[static_cast<size_t>(i)].seed),
                  one_line(b.answers[static_cast<size_t>(i)].text).c_str());
    }
  }
  return 0;
}

}  // namespace

Runner add_experiment_command(CLI::App& app) {
  auto opt = std::make_shared<ExperimentOptions>();
  CLI::App* cmd = app.add_subcommand("experiment", "Measured experiments on a model");
  cmd->require_subcommand(1);
  CLI::App* clamp = cmd->add_subcommand(
      "clamp", "Clamp a neuron across values and seeds: concept rate, fluency and probe probabilities per value");
  clamp->add_option("model", opt->model, "GGUF file or Hugging Face model folder")->required();
  clamp->add_option("--neuron", opt->neuron, "The neuron, LAYER:INDEX (its activation act(gate)*up)")->required();
  clamp->add_option("--prompt", opt->run.prompt, "The user message")->required();
  clamp->add_option("--concept", opt->run.concept_regex,
                    "The concept: a regular expression matched case-insensitively, e.g. '\\b(sea|ocean|beach)'")
      ->required();
  clamp->add_option("--values", opt->values,
                    "Clamp values V1,V2,... or auto: ±1, 2, 5 x the neuron's max |activation| (from --atlas's record, "
                    "else over the unclamped answers)")
      ->capture_default_str();
  clamp->add_option("--atlas", opt->atlas, "An atlas with a record of this model, for --values auto");
  clamp->add_option("--seeds", opt->run.seeds, "Answers per value (seeds 1..N)")->capture_default_str();
  clamp->add_option("--temperature", opt->run.temperature, "Sampling temperature")->capture_default_str();
  clamp->add_option("-n,--max-tokens", opt->run.max_tokens, "Tokens per answer")->capture_default_str();
  clamp->add_option("--tokens", opt->tokens, "Single tokens whose next-token probability after the prompt is shown");
  clamp->add_option("--logprob-margin", opt->run.logprob_margin,
                    "Fluent: mean log-prob per token at most this far below the unclamped answers'")
      ->capture_default_str();
  clamp->add_option("--repetition-margin", opt->run.repetition_margin,
                    "Fluent: repeated n-gram share at most this far above the unclamped answers'")
      ->capture_default_str();
  clamp->add_flag("--no-chat", opt->no_chat, "Use the prompt as plain text, not as a chat message");
  clamp->add_option("--plot", opt->plot, "Write concept rate and fluency against the value as SVG");
  clamp->add_option("--examples", opt->examples, "Answers of the best value to print")->capture_default_str();
  clamp->add_flag("--json", opt->json, "Print JSON (every answer)");
  clamp->add_option("--threads", opt->threads, "Worker threads (default: all cores)");
  add_weights_option(clamp, opt->weights);
  return [opt] { return run_experiment_clamp(*opt); };
}

}  // namespace neuronlens::cli

// `neuronlens generate MODEL -p TEXT`: let the model write, optionally with
// neurons clamped or ablated, streaming the text as it comes.
#include <algorithm>
#include <cstdio>
#include <string>
#include <vector>

#include "commands.h"
#include "neuronlens/sampling.h"
#include "text_model.h"

namespace neuronlens::cli {
namespace {

struct GenerateCommandOptions {
  std::string model;
  std::string prompt;
  bool chat = false;
  std::vector<std::string> clamps;
  std::vector<std::string> ablations;
  int64_t max_tokens = 64;
  uint64_t seed = 0;
  double temperature = 0.0;
  int64_t top_k = 0;
  double top_p = 1.0;
};

// How many leading bytes of `text` can be printed without splitting a UTF-8
// sequence that later tokens will complete: all but an unfinished one at the end.
size_t complete_utf8_prefix(const std::string& text) {
  const size_t n = text.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

int run_generate(const GenerateCommandOptions& opt) {
  const TextModel tm = TextModel::load(opt.model);
  const ModelConfig& config = tm.model.config();
  const auto interventions = parse_interventions(opt.clamps, opt.ablations, config);
  if (opt.max_tokens < 1 || opt.max_tokens > config.context_length) {
    throw Error("-n: must be 1 to " + std::to_string(config.context_length) + " (the model's context), got " +
                std::to_string(opt.max_tokens));
  }
  SamplingOptions sampling;
  sampling.temperature = opt.temperature;
  sampling.top_k = opt.top_k;
  sampling.top_p = opt.top_p;
  sampling.seed = opt.seed;
  Sampler sampler(sampling);
  const std::vector<int32_t> prompt = tm.prompt_tokens(opt.prompt, opt.chat);
  const std::vector<int32_t> stops = tm.stop_tokens();

  Session session(tm.model);
  apply_interventions(session, interventions);
  std::vector<float> logits = session.forward(prompt, LogitsFor::LastToken);
  const Vocabulary& vocab = tm.tokenizer.vocabulary();
  std::string pending;  // bytes not yet printed (an unfinished UTF-8 sequence)
  for (int64_t i = 0; i < opt.max_tokens; ++i) {
    const int32_t next = sampler.sample(logits);
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) break;
    pending += vocab.token(next).bytes;
    const size_t ready = complete_utf8_prefix(pending);
    std::fwrite(pending.data(), 1, ready, stdout);
    std::fflush(stdout);
    pending.erase(0, ready);
    // The generated text is capped by the context: stop when it is full.
    if (i + 1 == opt.max_tokens || session.position() >= config.context_length) break;
    logits = session.forward({next}, LogitsFor::LastToken);
  }
  std::fwrite(pending.data(), 1, pending.size(), stdout);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  return 0;
}

}  // namespace

Runner add_generate_command(CLI::App& app) {
  auto opt = std::make_shared<GenerateCommandOptions>();
  CLI::App* cmd = app.add_subcommand("generate", "Generate text, optionally with neurons clamped or ablated");
  cmd->add_option("model", opt->model, "Model (GGUF file / Hugging Face folder)")->required();
  cmd->add_option("-p,--prompt", opt->prompt, "Prompt text")->required();
  cmd->add_flag("--chat", opt->chat, "Wrap the prompt in the model's chat template as a user message");
  cmd->add_option("--clamp", opt->clamps, "Fix neuron activation: LAYER:NEURON=VALUE (repeatable)");
  cmd->add_option("--ablate", opt->ablations, "Zero neuron activation: LAYER:NEURON (repeatable)");
  cmd->add_option("-n,--tokens", opt->max_tokens, "Most tokens to generate")->capture_default_str();
  cmd->add_option("--seed", opt->seed, "Random seed for sampling")->capture_default_str();
  cmd->add_option("--temperature", opt->temperature, "Sampling temperature; 0 is greedy")->capture_default_str();
  cmd->add_option("--top-k", opt->top_k, "Sample among the K likeliest tokens; 0 is no limit")->capture_default_str();
  cmd->add_option("--top-p", opt->top_p, "Sample among the likeliest tokens holding P of the mass")
      ->capture_default_str();
  return [opt] { return run_generate(*opt); };
}

}  // namespace neuronlens::cli

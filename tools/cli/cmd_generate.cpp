// `neuronlens generate MODEL -p TEXT`: let the model write, optionally with
// neurons clamped or ablated, streaming the text as it comes.
#include <cstdio>
#include <string>
#include <string_view>
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
  InterventionOptions interventions;
  int64_t max_tokens = 64;
  uint64_t seed = 0;
  double temperature = 0.0;
  int64_t top_k = 0;
  double top_p = 1.0;
  std::string kv_cache = "f32";
  std::string weights = "quantized";
};

int run_generate(const GenerateCommandOptions& opt) {
  const TextModel tm = TextModel::load(opt.model);
  const ModelConfig& config = tm.model.config();
  const auto interventions = parse_interventions(opt.interventions, config);
  if (opt.max_tokens < 1 || opt.max_tokens > config.context_length) {
    throw bad_input("-n: must be 1 to " + std::to_string(config.context_length) + " (the model's context), got " +
                    std::to_string(opt.max_tokens));
  }
  SamplingOptions sampling;
  sampling.temperature = opt.temperature;
  sampling.top_k = opt.top_k;
  sampling.top_p = opt.top_p;
  sampling.seed = opt.seed;
  Sampler sampler(sampling);
  const std::vector<int32_t> prompt = tm.prompt_tokens(opt.prompt, opt.chat);

  Session session(tm.model, SessionOptions{parse_weight_format(opt.weights), parse_kv_cache_type(opt.kv_cache)});
  apply_interventions(session, interventions);
  const GenerationResult result =
      generate_text(session, tm, prompt, opt.max_tokens, sampler, [](int32_t, std::string_view text) {
        std::fwrite(text.data(), 1, text.size(), stdout);
        std::fflush(stdout);
        return true;
      });
  std::fwrite(result.unfinished.data(), 1, result.unfinished.size(), stdout);
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
  add_intervention_options(cmd, opt->interventions);
  cmd->add_option("-n,--tokens", opt->max_tokens, "Most tokens to generate")->capture_default_str();
  cmd->add_option("--kv", opt->kv_cache, "KV cache precision: f32, or f16 for half the memory")->capture_default_str();
  add_weights_option(cmd, opt->weights);
  cmd->add_option("--seed", opt->seed, "Random seed for sampling")->capture_default_str();
  cmd->add_option("--temperature", opt->temperature, "Sampling temperature; 0 is greedy")->capture_default_str();
  cmd->add_option("--top-k", opt->top_k, "Sample among the K likeliest tokens; 0 is no limit")->capture_default_str();
  cmd->add_option("--top-p", opt->top_p, "Sample among the likeliest tokens holding P of the mass")
      ->capture_default_str();
  return [opt] { return run_generate(*opt); };
}

}  // namespace neuronlens::cli

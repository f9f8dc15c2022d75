// The clamp experiment (arXiv 2501.02688's "clamp the dog neuron"), as a
// measured sweep: for each clamp value, N seeded answers to a prompt with the
// neuron clamped, beside the same N seeds without it; each answer scored for
// the concept (a regular expression, case-insensitive) and for fluency by the
// model itself: the mean log-probability of its tokens under the unclamped
// model, and the share of its token n-grams that repeat an earlier one.
// The best value is the one with the highest concept rate whose fluency
// stays within the margins of the answers without the clamp.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/runtime.h"
#include "neuronlens/text_model.h"

namespace neuronlens {

struct ClampExperimentOptions {
  int64_t layer = 0;
  int64_t neuron = 0;
  std::string prompt;
  bool chat = true;
  std::string concept_regex;           // PCRE2, matched case-insensitively against each answer
  std::vector<double> values;          // the clamp values; empty: auto
  // auto: these multiples (both signs) of the neuron's max |activation|
  // (from the atlas's record where given, else over the unclamped answers).
  std::vector<double> factors = {1, 2, 5};
  int64_t seeds = 20;                  // seeds 1..seeds
  double temperature = 0.7;
  int64_t max_tokens = 40;
  std::vector<std::string> probe_tokens;  // single tokens: p at the end of the prompt, without and with
  int ngram = 3;
  double logprob_margin = 1.0;         // nats per token below the unclamped answers' mean
  double repetition_margin = 0.1;      // share of repeated n-grams above the unclamped answers'
  WeightFormat weights = WeightFormat::Quantized;  // of every Session the experiment runs
};

struct ScoredAnswer {
  uint64_t seed = 0;
  std::string text;
  std::vector<int32_t> tokens;
  bool concept_match = false;
  double mean_logprob = 0;   // per token, under the unclamped model
  double repeated = 0;       // share of n-grams repeating an earlier one
};

struct ClampRun {
  std::optional<double> value;  // nullopt: without the clamp
  double factor = 0;            // value / max_abs (0 without a clamp)
  std::vector<ScoredAnswer> answers;
  int64_t concept_hits = 0;
  double concept_rate = 0;
  double mean_logprob = 0;
  double repeated = 0;
  std::vector<double> probe;    // per probe token: p at the end of the prompt
  bool fluent = true;           // within the margins of the unclamped run
};

struct ClampExperiment {
  double max_abs = 0;
  std::string max_abs_source;   // "record" or "answers"
  std::vector<std::string> probe_tokens;
  ClampRun baseline;
  std::vector<ClampRun> runs;   // in value order
  std::optional<size_t> best;   // index into runs
};

// Throws Error (bad input) on a bad regex, layer, neuron, probe token or option.
ClampExperiment run_clamp_experiment(const TextModel& text_model, const ClampExperimentOptions& options,
                                     const Atlas* atlas = nullptr,
                                     const std::function<void(int64_t done, int64_t total)>& on_progress = {});

// The pieces, for tests: mean log-probability of `answer` after `prompt`
// under the unclamped model, and the share of repeated n-grams.
double answer_mean_logprob(Session& session, const std::vector<int32_t>& prompt, const std::vector<int32_t>& answer);
double repeated_ngram_share(const std::vector<int32_t>& tokens, int n);

// One SVG: concept rate and mean log-probability against the clamp value.
std::string clamp_experiment_svg(const ClampExperiment& experiment, const std::string& title);

}  // namespace neuronlens

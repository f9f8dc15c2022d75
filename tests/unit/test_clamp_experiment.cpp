// The clamp experiment (neuronlens/clamp_experiment.h): its fluency measures
// on answers of known log-probability (the float64 NumPy forward pass of
// gen_forward_reference.py) and of known repetition; on the default model it
// reproduces docs/experiments.md's sea 2x row (seeds 1..20 at temperature
// 0.7, 40 tokens: 3/20 answers about the sea without the clamp, 11/20 with
// 27:1410 clamped to 28, and the probe probabilities printed there), as
// scripts/experiment_clamp.sh did; bad input is an Error.
#include <gtest/gtest.h>
#include <omp.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "neuronlens/clamp_experiment.h"
#include "neuronlens/error.h"
#include "neuronlens/runtime.h"
#include "test_paths.h"
#include "test_process.h"

#if defined(__SANITIZE_ADDRESS__)
#define NEURONLENS_TEST_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define NEURONLENS_TEST_SANITIZED 1
#endif
#endif

namespace neuronlens {
namespace {

TEST(ClampExperiment, MeanLogprobOfAnAnswerIsTheReferencesLogSoftmax) {
  std::ifstream in(testing::fixture_path("forward_reference/tiny_llama.json"));
  ASSERT_TRUE(in);
  const nlohmann::json ref = nlohmann::json::parse(in);
  const nlohmann::json& seq = ref.at("sequences").at(0);
  const std::vector<int32_t> tokens = seq.at("tokens").get<std::vector<int32_t>>();
  const std::vector<int32_t> prompt(tokens.begin(), tokens.begin() + 4), answer(tokens.begin() + 4, tokens.end());
  double want = 0;
  for (size_t i = 0; i < answer.size(); ++i) {
    const std::vector<double> logits = seq.at("logits").at(3 + i).get<std::vector<double>>();
    double max = logits[0], sum = 0;
    for (double l : logits) max = std::max(max, l);
    for (double l : logits) sum += std::exp(l - max);
    want += logits[static_cast<size_t>(answer[i])] - max - std::log(sum);
  }
  want /= static_cast<double>(answer.size());
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  Session session(model);
  EXPECT_NEAR(answer_mean_logprob(session, prompt, answer), want, 1e-4);
  EXPECT_EQ(answer_mean_logprob(session, prompt, {}), 0.0);
}

TEST(ClampExperiment, RepeatedNgramShare) {
  EXPECT_DOUBLE_EQ(repeated_ngram_share({5, 6, 7, 5, 6, 7, 5, 6, 7}, 3), 4.0 / 7.0);
  EXPECT_DOUBLE_EQ(repeated_ngram_share({1, 2, 3, 4, 5}, 3), 0.0);
  EXPECT_DOUBLE_EQ(repeated_ngram_share({9, 9, 9, 9}, 1), 3.0 / 4.0);
  EXPECT_DOUBLE_EQ(repeated_ngram_share({1, 2}, 3), 0.0);
  EXPECT_THROW(repeated_ngram_share({1}, 0), Error);
}

TEST(ClampExperiment, BadInputIsAnError) {
  const TextModel tm = TextModel::load(testing::fixture_path("tiny_llama.gguf"));
  ClampExperimentOptions o;
  o.prompt = "the dog";
  o.chat = false;
  o.seeds = 1;
  o.max_tokens = 2;
  o.values = {1.0};
  o.concept_regex = "(unclosed";
  EXPECT_THROW(run_clamp_experiment(tm, o), Error);
  o.concept_regex = "dog";
  o.layer = 2;
  EXPECT_THROW(run_clamp_experiment(tm, o), Error);
  o.layer = 0;
  o.neuron = 96;
  EXPECT_THROW(run_clamp_experiment(tm, o), Error);
  o.neuron = 0;
  o.probe_tokens = {"not one token at all"};
  EXPECT_THROW(run_clamp_experiment(tm, o), Error);
  o.probe_tokens = {};
  const ClampExperiment e = run_clamp_experiment(tm, o);
  ASSERT_EQ(e.runs.size(), 1u);
  EXPECT_EQ(e.baseline.answers.size(), 1u);
  EXPECT_EQ(*e.runs[0].value, 1.0);
}

TEST(ClampExperiment, TheCliRunsItAndRefusesBadInputWithExit2) {
  const std::string cli = testing::cli_path() + " experiment clamp " + testing::fixture_path("tiny_llama.gguf") +
                          " --neuron 1:5 --prompt 'the dog' --no-chat --seeds 2 -n 3 ";
  std::string out;
  ASSERT_EQ(testing::run_command(cli + "--concept dog --values -2,2 --json", out, false), 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out);
  ASSERT_EQ(j.at("runs").size(), 2u);
  EXPECT_EQ(j.at("runs")[0].at("value"), -2.0);
  EXPECT_EQ(j.at("baseline").at("answers").size(), 2u);
  for (const auto& [args, message] : std::vector<std::pair<std::string, std::string>>{
           {"--concept '(x'", "is not a regular expression"},
           {"--concept dog --values 1,x", "--values: 'x' is not a number"},
           {"--concept dog --temperature -1", "--temperature must be >= 0"}}) {
    out.clear();
    EXPECT_EQ(testing::run_command(cli + args, out), 2) << args << "\n" << out;
    EXPECT_NE(out.find(message), std::string::npos) << args << "\n" << out;
  }
}

TEST(ClampExperiment, DefaultModelReproducesTheSea2xRow) {
#ifdef NEURONLENS_TEST_SANITIZED
  GTEST_SKIP() << "80 generations of the default model: left to the Release build";
#endif
  const std::string path = testing::default_model_path();
  if (path.empty()) GTEST_SKIP() << "default model missing";
  const TextModel tm = TextModel::load(path);
  ClampExperimentOptions o;
  o.layer = 27;
  o.neuron = 1410;
  o.prompt = "Where would you most like to travel?";
  o.concept_regex = "\\b(sea|seas|ocean|beach|coast)";
  o.values = {28};
  o.probe_tokens = {" sea", " ocean", "Sea"};
  // The documented run multiplied the Q4_1 matrices with float32 activations,
  // what --weights exact does (the default now rounds them to 8 bits).
  o.weights = WeightFormat::Exact;
  // The documented run gave each generate one thread (JOBS=2 on 2 cores).
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const ClampExperiment e = run_clamp_experiment(tm, o);
  omp_set_num_threads(threads);
  EXPECT_EQ(e.baseline.concept_hits, 3);
  ASSERT_EQ(e.runs.size(), 1u);
  EXPECT_EQ(e.runs[0].concept_hits, 11);
  const double without[] = {2.055e-09, 1.241e-08, 3.874e-06}, with[] = {5.186e-07, 3.411e-06, 0.000331};
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(e.baseline.probe.at(i), without[i], 0.001 * without[i]) << o.probe_tokens[i];
    EXPECT_NEAR(e.runs[0].probe.at(i), with[i], 0.002 * with[i]) << o.probe_tokens[i];
  }
  // The matching seeds docs/experiments.md names: 3, 4 and 11 without; 6, 7, 15, 19 among those with.
  for (uint64_t seed : {3, 4, 11}) EXPECT_TRUE(e.baseline.answers.at(seed - 1).concept_match) << seed;
  for (uint64_t seed : {6, 7, 15, 19}) EXPECT_TRUE(e.runs[0].answers.at(seed - 1).concept_match) << seed;
  EXPECT_TRUE(e.runs[0].fluent);
  ASSERT_TRUE(e.best);
  EXPECT_EQ(*e.best, 0u);
  EXPECT_LT(e.runs[0].mean_logprob, 0.0);
}

}  // namespace
}  // namespace neuronlens

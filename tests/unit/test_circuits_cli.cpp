// The CLI of issue 15's runtime parts: --ablate-head / --scale-head on
// generate, probe and lens; `attribute` (its parts add up to its logit, the
// logit is the model's) and `patch` (the causal checks, the heat map), and
// their bad input (exit 2 with a message).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "neuronlens/gguf.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "neuronlens/sampling.h"
#include "neuronlens/tokenizer.h"
#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

std::string cli(const std::string& args) { return testing::cli_path() + " " + args; }

nlohmann::json run_json(const std::string& args) {
  std::string out;
  EXPECT_EQ(testing::run_command(cli(args), out, false), 0) << args << "\n" << out;
  return nlohmann::json::parse(out);
}

void expect_error(const std::string& args, const std::string& message) {
  std::string out;
  EXPECT_EQ(testing::run_command(cli(args), out), 2) << args << "\n" << out;
  EXPECT_NE(out.find(message), std::string::npos) << args << "\n" << out;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::vector<int32_t> prompt_ids(const std::string& model, const std::string& text) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(model));
  std::vector<int32_t> ids;
  if (tokenizer.adds_bos() && tokenizer.bos_id()) ids.push_back(*tokenizer.bos_id());
  for (int32_t id : tokenizer.encode(text, false)) ids.push_back(id);
  return ids;
}

TEST(HeadCli, ProbeWithAnAblatedHeadIsTheLibrarysAblation) {
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const nlohmann::json j =
      run_json("probe " + model + " --json -p 'the dog' --tokens ' dog' --ablate-head 1:2 --scale-head 0:1=2.5");
  const Model m = Model::load(model);
  Session session(m);
  session.ablate_heads(1, {2});
  session.scale_heads(0, {1}, 2.5f);
  const std::vector<float> logits = session.forward(prompt_ids(model, "the dog"), LogitsFor::LastToken);
  const std::vector<double> p = softmax_probabilities(logits);
  const int32_t dog = j["tokens"][0]["id"].get<int32_t>();
  EXPECT_NEAR(j["tokens"][0]["p_with"].get<double>(), p[static_cast<size_t>(dog)], 1e-9);
  EXPECT_NE(j["tokens"][0]["p_with"], j["tokens"][0]["p_without"]);
  EXPECT_EQ(j["interventions"], nlohmann::json({"ablate-head 1:2", "scale-head 0:1=2.5"}));
}

TEST(HeadCli, LensAndGenerateTakeHeadInterventions) {
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const nlohmann::json plain = run_json("lens " + model + " --json --top 3 -p 'the dog'");
  const nlohmann::json ablated = run_json("lens " + model + " --json --top 3 -p 'the dog' --ablate-head 0:0 "
                                          "--ablate-head 0:1 --ablate-head 0:2 --ablate-head 0:3");
  EXPECT_NE(plain["positions"].back()["layers"].back(), ablated["positions"].back()["layers"].back());
  std::string out;
  EXPECT_EQ(testing::run_command(cli("generate " + model + " -p 'the dog' -n 4 --scale-head 1:0=0.5"), out), 0) << out;

  const ModelConfig c = Model::load(model).config();
  const std::string heads = std::to_string(c.n_heads);
  for (const std::string command : {"generate", "probe", "lens", "attribute"}) {
    std::string base = command + " " + model + " -p 'the dog'";
    if (command == "probe") base += " --tokens ' dog'";
    if (command == "attribute") base += " --token ' dog'";
    expect_error(base + " --ablate-head 0:" + heads,
                 "--ablate-head: '0:" + heads + "': head " + heads + " is out of range");
    expect_error(base + " --ablate-head " + std::to_string(c.n_layers) + ":0", "layer");
    expect_error(base + " --scale-head 0:1", "--scale-head: '0:1' is not LAYER:HEAD=FACTOR");
    expect_error(base + " --scale-head 0:1=inf", "--scale-head: '0:1=inf': value 'inf' is not a finite number");
    expect_error(base + " --ablate-head 0:1=2", "--ablate-head: '0:1=2' is not LAYER:HEAD");
  }
}

TEST(AttributeCli, PartsAddUpToTheModelsLogit) {
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const std::string plot = (std::filesystem::temp_directory_path() / "neuronlens_attribute_test.svg").string();
  const nlohmann::json j = run_json("attribute " + model + " --json --top 0 -p 'the dog' --token ' dog' --vs ' cat' "
                                    "--plot " + plot);
  // The model's logit difference, from a plain forward pass.
  const Model m = Model::load(model);
  Session session(m);
  const std::vector<float> logits = session.forward(prompt_ids(model, "the dog"), LogitsFor::LastToken);
  const auto dog = j["token"]["id"].get<size_t>(), cat = j["vs"]["id"].get<size_t>();
  const double logit = j["logit"].get<double>();
  EXPECT_NEAR(logit, double(logits[dog]) - double(logits[cat]), 1e-5);
  double sum = 0;
  size_t heads = 0, neurons = 0;
  for (const auto& c : j["components"]) {
    sum += c["contribution"].get<double>();
    if (c["kind"] == "head") {
      ++heads;
      EXPECT_TRUE(c.contains("head") && c.contains("layer"));
    }
    if (c["kind"] == "neuron") {
      ++neurons;
      EXPECT_TRUE(c.contains("neuron") && c.contains("layer"));
    }
  }
  const ModelConfig& cfg = m.config();
  EXPECT_EQ(heads, static_cast<size_t>(cfg.n_layers * cfg.n_heads));
  EXPECT_EQ(neurons, static_cast<size_t>(cfg.n_layers * cfg.d_ffn));
  EXPECT_NEAR(sum, logit, 1e-4 * std::max(1.0, std::fabs(logit)));
  EXPECT_NEAR(j["remainder"].get<double>(), logit - sum, 1e-9);
  EXPECT_EQ(j["layers"].size(), static_cast<size_t>(cfg.n_layers));
  EXPECT_TRUE(j["top_head_check"].contains("ablated_change"));
  const std::string svg = read_file(plot);
  EXPECT_NE(svg.find("<svg"), std::string::npos);
  EXPECT_NE(svg.find("layer 1 attention"), std::string::npos);
  std::filesystem::remove(plot);

  // The text report lists --top parts and the check.
  std::string out;
  ASSERT_EQ(testing::run_command(cli("attribute " + model + " -p 'the dog' --token ' dog' --top 3"), out), 0) << out;
  EXPECT_NE(out.find("remainder"), std::string::npos) << out;
  EXPECT_NE(out.find("top 3 parts"), std::string::npos) << out;
  EXPECT_NE(out.find("check: ablating head"), std::string::npos) << out;

  expect_error("attribute " + model + " -p 'the dog' --token ' the dog'", "--token: ' the dog' is 2 tokens, not one");
  expect_error("attribute " + model + " -p 'the dog' --token ' dog' --vs ' dog'", "the same");
  expect_error("attribute " + model + " -p 'the dog' --token ' dog' --top -1", "--top");
}

TEST(PatchCli, CausalChecksAndErrors) {
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const std::string plot = (std::filesystem::temp_directory_path() / "neuronlens_patch_test.svg").string();
  const nlohmann::json j = run_json("patch " + model + " --json --clean 'the dog' --corrupt 'the cat' --token ' dog' "
                                    "--plot " + plot);
  const ModelConfig c = Model::load(model).config();
  const auto n = j["tokens"].size();
  ASSERT_EQ(j["residual"].size(), n * static_cast<size_t>(c.n_layers));
  ASSERT_EQ(j["heads"].size(), static_cast<size_t>(c.n_layers * c.n_heads));
  const nlohmann::json& last = j["residual"].back();
  EXPECT_EQ(last["layer"], c.n_layers - 1);
  EXPECT_EQ(last["position"], n - 1);
  EXPECT_EQ(last["restored"].get<double>(), 1.0);
  EXPECT_NE(j["clean"], j["corrupt"]);
  EXPECT_NE(read_file(plot).find("residual stream"), std::string::npos);
  std::filesystem::remove(plot);

  const nlohmann::json same =
      run_json("patch " + model + " --json --clean 'the dog' --corrupt 'the dog' --token ' dog' --layers 0,1");
  EXPECT_EQ(same["layers"], nlohmann::json({0, 1}));
  for (const char* grid : {"residual", "mlp", "heads"}) {
    for (const auto& cell : same[grid]) {
      EXPECT_EQ(cell["restored"].get<double>(), 0.0);
      EXPECT_EQ(cell["effect"].get<double>(), 0.0);
    }
  }

  expect_error("patch " + model + " --clean 'the dog' --corrupt 'the big dog' --token ' dog'",
               "activation patching needs prompts of the same token count");
  expect_error("patch " + model + " --clean 'the dog' --corrupt 'the cat' --token ' the dog'",
               "--token: ' the dog' is 2 tokens, not one");
  expect_error("patch " + model + " --clean 'the dog' --corrupt 'the cat' --token ' dog' --layers 99",
               "--layers: layer 99 is out of range");
}

}  // namespace
}  // namespace neuronlens

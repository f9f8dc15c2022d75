// The text commands of the CLI (tools/cli/cmd_generate.cpp, cmd_probe.cpp,
// cmd_lens.cpp): greedy generation equals greedy decoding through the
// library, probe with and without interventions, the logit lens, and the
// errors for bad input (exit 2 with a message).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "neuronlens/chat_template.h"
#include "neuronlens/gguf.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "neuronlens/sampling.h"
#include "neuronlens/tokenizer.h"
#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

std::string quoted(const std::string& s) { return "'" + s + "'"; }

std::string cli(const std::string& args) { return testing::cli_path() + " " + args; }

// Greedy decoding through the library, as `generate` should do it: the text
// of the tokens before the first stop token.
std::string library_greedy(const std::string& model_path, const std::string& prompt, bool chat, int n) {
  const Model model = Model::load(model_path);
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(model_path));
  const auto chat_template = ChatTemplate::detect(read_chat_template_source(model_path), tokenizer.vocabulary());
  std::vector<int32_t> ids;
  if (chat) {
    ids = tokenizer.encode(chat_template->render({{"user", prompt}}), true);
  } else {
    if (tokenizer.adds_bos() && tokenizer.bos_id()) ids.push_back(*tokenizer.bos_id());
    const auto body = tokenizer.encode(prompt, false);
    ids.insert(ids.end(), body.begin(), body.end());
  }
  std::vector<int32_t> stops;
  if (chat_template) stops = chat_template->stop_tokens();
  else if (tokenizer.eos_id()) stops = {*tokenizer.eos_id()};
  Session session(model);
  std::vector<float> logits = session.forward(ids, LogitsFor::LastToken);
  std::vector<int32_t> generated;
  for (int i = 0; i < n; ++i) {
    const int32_t next = argmax_token(logits);
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) break;
    generated.push_back(next);
    logits = session.forward({next}, LogitsFor::LastToken);
  }
  std::string text;
  for (int32_t id : generated) text += tokenizer.vocabulary().token(id).bytes;
  return text;
}

TEST(GenerateCli, TinyGreedyIsDeterministicAndMatchesTheLibrary) {
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  std::string first, second;
  ASSERT_EQ(testing::run_command(cli("generate " + model + " -p 'the dog' -n 12"), first, false), 0);
  ASSERT_EQ(testing::run_command(cli("generate " + model + " -p 'the dog' -n 12"), second, false), 0);
  EXPECT_EQ(first, second);
  EXPECT_EQ(first, library_greedy(model, "the dog", false, 12) + "\n");

  std::string chat;
  ASSERT_EQ(testing::run_command(cli("generate " + model + " --chat -p 'the dog' -n 12"), chat, false), 0);
  EXPECT_EQ(chat, library_greedy(model, "the dog", true, 12) + "\n");
}

TEST(GenerateCli, SeededSamplingIsReproducible) {
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const std::string args = " -p 'the dog' -n 16 --temperature 1.2 --top-k 20 --top-p 0.9 --seed ";
  std::string a, b;
  ASSERT_EQ(testing::run_command(cli("generate " + model + args + "5"), a, false), 0);
  ASSERT_EQ(testing::run_command(cli("generate " + model + args + "5"), b, false), 0);
  EXPECT_EQ(a, b);
}

TEST(GenerateCli, DefaultModelChatGreedyMatchesTheLibrary) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model);
  const std::string prompt = "What is your favourite animal?";
  std::string out;
  ASSERT_EQ(testing::run_command(cli("generate " + model + " --chat -n 24 -p " + quoted(prompt)), out, false), 0);
  EXPECT_EQ(out, library_greedy(model, prompt, true, 24) + "\n");
  EXPECT_GT(out.size(), 10u);
}

nlohmann::json probe_json(const std::string& model, const std::string& extra) {
  std::string out;
  const std::string args = " --json -p 'the dog' --tokens ' dog' --tokens ' cat' ";
  EXPECT_EQ(testing::run_command(cli("probe " + model + args + extra), out, false), 0) << out;
  return nlohmann::json::parse(out);
}

TEST(ProbeCli, NoInterventionGivesIdenticalColumns) {
  const nlohmann::json j = probe_json(testing::fixture_path("tiny_llama.gguf"), "");
  ASSERT_EQ(j["tokens"].size(), 2u);
  for (const auto& t : j["tokens"]) EXPECT_EQ(t["p_without"], t["p_with"]);
  EXPECT_EQ(j["top_without"], j["top_with"]);
  EXPECT_EQ(j["top_without"].size(), 10u);
}

TEST(ProbeCli, ClampChangesTheProbabilities) {
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const nlohmann::json j = probe_json(model, "--clamp 1:3=25");
  for (const auto& t : j["tokens"]) EXPECT_NE(t["p_without"], t["p_with"]);
  const nlohmann::json a = probe_json(model, "--ablate 0:1 --ablate 1:2");
  EXPECT_NE(a["top_without"], a["top_with"]);
  // The text table says so when nothing is changed.
  std::string out;
  ASSERT_EQ(testing::run_command(cli("probe " + model + " -p 'the dog' --tokens ' dog'"), out), 0);
  EXPECT_NE(out.find("no intervention"), std::string::npos) << out;
}

TEST(ProbeCli, DefaultModelClamp) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model);
  const nlohmann::json plain = probe_json(model, "");
  for (const auto& t : plain["tokens"]) EXPECT_EQ(t["p_without"], t["p_with"]);
  const nlohmann::json j = probe_json(model, "--clamp 10:100=20");
  for (const auto& t : j["tokens"]) EXPECT_NE(t["p_without"], t["p_with"]);
}

TEST(LensCli, LastLayerIsTheModelsPrediction) {
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  std::string out;
  ASSERT_EQ(testing::run_command(cli("lens " + model + " --json --top 3 -p 'the dog'"), out, false), 0) << out;
  const nlohmann::json j = nlohmann::json::parse(out);
  const Model m = Model::load(model);
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(model));
  std::vector<int32_t> ids;
  if (tokenizer.adds_bos() && tokenizer.bos_id()) ids.push_back(*tokenizer.bos_id());
  for (int32_t id : tokenizer.encode("the dog", false)) ids.push_back(id);
  ASSERT_EQ(j["positions"].size(), ids.size());
  Session session(m);
  const std::vector<float> logits = session.forward(ids, LogitsFor::AllTokens);
  const auto v = static_cast<size_t>(m.config().vocab_size);
  for (size_t pos = 0; pos < ids.size(); ++pos) {
    const auto& layers = j["positions"][pos]["layers"];
    ASSERT_EQ(layers.size(), static_cast<size_t>(m.config().n_layers));
    EXPECT_EQ(layers.back()["top"].size(), 3u);
    const int32_t best = argmax_token(std::span<const float>(logits.data() + pos * v, v));
    EXPECT_EQ(layers.back()["top"][0]["id"].get<int32_t>(), best) << "position " << pos;
  }
}

// A copy of the tiny Hugging Face model with no chat template and no ChatML tokens.
std::string model_without_chat_template() {
  namespace fs = std::filesystem;
  const fs::path dir = fs::temp_directory_path() / ("neuronlens_nochat_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::copy(testing::fixture_path("tiny_llama_hf"), dir, fs::copy_options::recursive);
  fs::remove(dir / "tokenizer_config.json");
  std::ifstream in(dir / "tokenizer.json");
  nlohmann::json tok = nlohmann::json::parse(in);
  in.close();
  for (const std::string old_name : {"<|im_start|>", "<|im_end|>"}) {
    const std::string new_name = "<|xx" + old_name.substr(4);
    auto& vocab = tok["model"]["vocab"];
    if (vocab.contains(old_name)) {
      vocab[new_name] = vocab[old_name];
      vocab.erase(old_name);
    }
    for (auto& added : tok["added_tokens"]) {
      if (added["content"] == old_name) added["content"] = new_name;
    }
  }
  std::ofstream(dir / "tokenizer.json") << tok.dump();
  return dir.string();
}

void expect_error(const std::string& args, const std::string& message) {
  std::string out;
  EXPECT_EQ(testing::run_command(cli(args), out), 2) << args << "\n" << out;
  EXPECT_NE(out.find(message), std::string::npos) << args << "\n" << out;
}

TEST(GenerateCli, BadInputExitsTwoWithAMessage) {
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const ModelConfig config = Model::load(model).config();
  const std::string layers = std::to_string(config.n_layers);
  const std::string neurons = std::to_string(config.d_ffn);
  for (const std::string command : {"generate", "probe"}) {
    const std::string base = command + " " + model + " -p 'the dog'" + (command == "probe" ? " --tokens ' dog'" : "");
    // The core's message (neuronlens/interventions.h) behind the option's name.
    expect_error(base + " --clamp " + layers + ":0=1",
                 "--clamp: '" + layers + ":0=1': layer " + layers + " is out of range");
    expect_error(base + " --clamp 0:" + neurons + "=1", "--clamp: '0:" + neurons + "=1': neuron " + neurons +
                                                             " is out of range");
    expect_error(base + " --ablate 0:" + neurons, "--ablate: '0:" + neurons + "': neuron " + neurons +
                                                      " is out of range");
    expect_error(base + " --clamp 0:1", "--clamp: '0:1' is not LAYER:NEURON=VALUE");
    expect_error(base + " --clamp 0:1=x", "--clamp: '0:1=x': value 'x' is not a finite number");
    expect_error(base + " --clamp x:1=2", "--clamp: 'x:1=2': layer 'x' is not a number");
    expect_error(base + " --ablate 0:1=2", "--ablate: '0:1=2' is not LAYER:NEURON");
  }
  expect_error("generate " + model + " -p hi -n 0", "-n: must be 1 to 256");
  expect_error("generate " + model + " -p hi -n 1000000", "-n: must be 1 to 256");
  std::string long_prompt;
  for (int i = 0; i < 300; ++i) long_prompt += "the dog ";
  expect_error("generate " + model + " -p '" + long_prompt + "'", "the model's context is 256 tokens");
  expect_error("probe " + model + " -p hi --tokens ' the dog'", "--tokens: ' the dog' is 2 tokens, not one");
  expect_error("generate " + model + " -p hi --temperature 1 --top-p 0", "top-p must be in (0, 1]");

  const std::string no_chat = model_without_chat_template();
  expect_error("generate " + no_chat + " --chat -p hi", "this model has no chat template neuronlens knows");
  std::string out;
  EXPECT_EQ(testing::run_command(cli("generate " + no_chat + " -p hi -n 3"), out), 0) << out;
  std::filesystem::remove_all(no_chat);
}

}  // namespace
}  // namespace neuronlens

// RoPE and window variants read from real-world configs, on the tiny family
// fixtures (tests/fixtures/families/, scripts/make_family_fixtures.py):
//   - phi3_longrope: LongRoPE (Phi-3 128k, Phi-3.5, Phi-4-mini) with partial
//     rotary (Phi-4-mini), from GGUF (llama.cpp's converter layout: factor
//     tensors and keys) and from config.json; the logits themselves are
//     checked in test_family_fixtures.cpp;
//   - what the session does when a LongRoPE sequence grows past the
//     original context (runs it again, as transformers' Phi-3 does);
//   - qwen3_window: Qwen's use_sliding_window / max_window_layers;
//   - the refusals, each naming what is wrong.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

#include "json_fixture.h"
#include "scratch_dir.h"
#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"

namespace neuronlens {
namespace {

using testing::committed_fixture;
using testing::read_json;

std::string family(const std::string& name, const std::string& part) {
  return committed_fixture("families/" + name + "/" + part);
}

TEST(LongRope, ReadFromGgufAndConfigJsonAlike) {
  const nlohmann::json ref = read_json(family("phi3_longrope", "reference.json"));
  const nlohmann::json& lr = ref.at("hyperparameters").at("longrope");
  const auto short_factor = lr.at("short").get<std::vector<double>>();
  const auto long_factor = lr.at("long").get<std::vector<double>>();
  const double attention_factor = lr.at("attention_factor").get<double>();
  for (const char* part : {"model.gguf", "hf"}) {
    const ModelConfig c = Model::load(family("phi3_longrope", part)).config();
    EXPECT_EQ(c.rotary_dim, ref.at("hyperparameters").at("rotary_dim").get<int64_t>()) << part;
    EXPECT_EQ(c.rotated_dims(), 8) << part;
    EXPECT_TRUE(c.rope_scaling.is_longrope()) << part;
    EXPECT_EQ(c.rope_scaling.original_context, lr.at("original").get<int64_t>()) << part;
    EXPECT_EQ(c.rope_scaling.short_factor, short_factor) << part;  // dyadic: exact in float32
    EXPECT_EQ(c.rope_scaling.long_factor, long_factor) << part;
    // sqrt(1 + ln(256 / 12) / ln(12)); the GGUF holds it as float32
    EXPECT_NEAR(c.rope_scaling.attention_factor, attention_factor, 1e-7) << part;
    EXPECT_NE(describe_block(c).find("LongRoPE"), std::string::npos) << describe_block(c);
    EXPECT_NE(describe_block(c).find("rotary on 8 of 16"), std::string::npos) << describe_block(c);
  }
  EXPECT_NEAR(attention_factor, std::sqrt(1.0 + std::log(256.0 / 12.0) / std::log(12.0)), 1e-12);
}

// Crossing the original context token by token: the step that crosses runs
// the whole sequence again (a hook sees positions from 0), and from then on
// each step is one token again.
TEST(LongRope, TheStepPastTheOriginalContextRunsTheSequenceAgain) {
  const Model model = Model::load(family("phi3_longrope", "model.gguf"));
  const int64_t original = model.config().rope_scaling.original_context;
  Session session(model);
  std::vector<std::pair<int64_t, int64_t>> calls;  // (first position, rows) at layer 0's input
  session.add_hook(HookPoint::ResidualIn, 0, [&](int64_t, HookPoint, float*, int64_t n, int64_t, int64_t first) {
    calls.emplace_back(first, n);
  });
  for (int64_t t = 0; t < original + 2; ++t) session.forward({static_cast<int32_t>(10 + t)});
  ASSERT_EQ(static_cast<int64_t>(calls.size()), original + 2);
  for (int64_t t = 0; t < original; ++t) EXPECT_EQ(calls[size_t(t)], std::make_pair(t, int64_t{1}));
  EXPECT_EQ(calls[size_t(original)], std::make_pair(int64_t{0}, original + 1));
  EXPECT_EQ(calls[size_t(original + 1)], std::make_pair(original + 1, int64_t{1}));
  EXPECT_EQ(session.position(), original + 2);

  // reset() forgets the tokens: a fresh short sequence takes no rerun.
  session.reset();
  calls.clear();
  session.forward({1, 2, 3});
  session.forward({4});
  EXPECT_EQ(calls.back(), std::make_pair(int64_t{3}, int64_t{1}));
}

// A copy of a fixture's Hugging Face folder with config.json changed.
class EditedConfig {
 public:
  EditedConfig(const std::string& family_name, const std::function<void(nlohmann::json&)>& edit) {
    std::filesystem::copy(family(family_name, "hf"), dir_.file("hf"));
    nlohmann::json config = read_json(dir_.file("hf/config.json"));
    edit(config);
    std::ofstream(dir_.file("hf/config.json")) << config.dump();
  }
  std::string path() const { return dir_.file("hf"); }
  // The loader's message, or "(accepted)".
  std::string load_error() const {
    try {
      Model::load(path());
    } catch (const Error& e) {
      return e.what();
    }
    return "(accepted)";
  }

 private:
  testing::ScratchDir dir_;
};

TEST(LongRope, BadConfigsAreRefusedNamingTheKey) {
  const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases = {
      {[](nlohmann::json& c) { c["rope_scaling"]["short_factor"] = {1.0, 1.0}; },
       "LongRoPE short factors: 2 values, expected rotary_dim/2 = 4"},
      {[](nlohmann::json& c) { c["rope_scaling"]["long_factor"][1] = 0.0; }, "LongRoPE long factor 0"},
      {[](nlohmann::json& c) { c["rope_scaling"].erase("short_factor"); }, "LongRoPE needs 'short_factor'"},
      {[](nlohmann::json& c) { c["rope_scaling"]["long_factor"] = "wide"; }, "LongRoPE needs 'long_factor'"},
      {[](nlohmann::json& c) { c["partial_rotary_factor"] = 0.3125; }, "rotary dimension 5"},
      {[](nlohmann::json& c) { c["partial_rotary_factor"] = 1.5; }, "partial_rotary_factor is 1.5"},
  };
  for (const auto& [edit, expected] : cases) {
    const std::string message = EditedConfig("phi3_longrope", edit).load_error();
    EXPECT_NE(message.find(expected), std::string::npos) << "expected '" << expected << "' in: " << message;
  }
}

// Hugging Face's own defaults when config.json leaves things out: without a
// top-level original context the factor comes from rope_scaling.factor and
// the original context is max_position_embeddings; an attention_factor given
// is taken as is.
TEST(LongRope, HuggingFaceDefaultsForTheOriginalContextAndTheAttentionFactor) {
  const ModelConfig no_original = Model::load(EditedConfig("phi3_longrope", [](nlohmann::json& c) {
                                                c.erase("original_max_position_embeddings");
                                                c["rope_scaling"]["factor"] = 4.0;
                                              }).path())
                                      .config();
  EXPECT_EQ(no_original.rope_scaling.original_context, 256);
  EXPECT_NEAR(no_original.rope_scaling.attention_factor, std::sqrt(1.0 + std::log(4.0) / std::log(256.0)), 1e-12);
  const ModelConfig given = Model::load(EditedConfig("phi3_longrope", [](nlohmann::json& c) {
                                          c["rope_scaling"]["attention_factor"] = 1.25;
                                        }).path())
                                .config();
  EXPECT_EQ(given.rope_scaling.attention_factor, 1.25);
}

// Phi-3 128k ships sliding_window 262144 beside 131072 positions: a window
// that can never bind is no window. Other families still refuse one wider
// than the context.
TEST(SlidingWindowConfig, Phi3WindowWiderThanTheContextIsNoWindow) {
  const ModelConfig phi3 =
      Model::load(EditedConfig("phi3", [](nlohmann::json& c) { c["sliding_window"] = 512; }).path()).config();
  EXPECT_EQ(phi3.sliding_window, 0);
  const ModelConfig phi3_window =
      Model::load(EditedConfig("phi3", [](nlohmann::json& c) { c["sliding_window"] = 8; }).path()).config();
  EXPECT_EQ(phi3_window.sliding_window, 8);
  const std::string message =
      EditedConfig("gemma2", [](nlohmann::json& c) { c["sliding_window"] = 512; }).load_error();
  EXPECT_NE(message.find("larger than max_position_embeddings"), std::string::npos) << message;
}

TEST(SlidingWindowConfig, QwenWindowFromMaxWindowLayersOrLayerTypes) {
  const ModelConfig qwen = Model::load(family("qwen3_window", "hf")).config();
  EXPECT_EQ(qwen.sliding_window, 4);
  EXPECT_EQ(qwen.sliding_layers, (std::vector<uint8_t>{0, 1}));  // max_window_layers 1
  const ModelConfig typed = Model::load(EditedConfig("qwen3_window", [](nlohmann::json& c) {
                                          c["layer_types"] = {"sliding_attention", "full_attention"};
                                        }).path())
                                .config();
  EXPECT_EQ(typed.sliding_layers, (std::vector<uint8_t>{1, 0}));
  const ModelConfig off = Model::load(EditedConfig("qwen3_window", [](nlohmann::json& c) {
                                        c["use_sliding_window"] = false;
                                      }).path())
                              .config();
  EXPECT_EQ(off.sliding_window, 0);
  for (const auto& [edit, expected] :
       std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>>{
           {[](nlohmann::json& c) { c["sliding_window"] = 0; }, "key 'sliding_window' is 0"},
           {[](nlohmann::json& c) { c["max_window_layers"] = -1; }, "key 'max_window_layers' is -1"},
           {[](nlohmann::json& c) { c["layer_types"] = {"sliding_attention"}; }, "key 'layer_types' has 1 entries"},
       }) {
    const std::string message = EditedConfig("qwen3_window", edit).load_error();
    EXPECT_NE(message.find(expected), std::string::npos) << "expected '" << expected << "' in: " << message;
  }
}

}  // namespace
}  // namespace neuronlens

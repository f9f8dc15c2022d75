// The other supported families: qwen2 (q/k/v biases, tied head, q/k rows not
// permuted in GGUF) and mistral, checked tensor by tensor against the
// generator's float32 digests.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>

#include "io/sha256.h"
#include "model/architecture.h"
#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

nlohmann::json manifest() {
  std::ifstream in(testing::fixture_path("tiny_families_manifest.json"));
  return nlohmann::json::parse(in);
}

std::string digest(const TensorView& t) {
  std::vector<float> values(static_cast<size_t>(t.elements()));
  dequantize_rows(t, 0, t.rows(), values.data());
  Sha256 sha;
  sha.update(values.data(), values.size() * sizeof(float));
  return sha.hex_digest();
}

// Every weight the model holds, found by its name in the given format.
void expect_weights_match(const Model& model, const nlohmann::json& tensors, bool by_gguf_name) {
  int matched = 0;
  for (const TensorView* t : model.all_tensors()) {
    const nlohmann::json* entry = nullptr;
    for (const auto& [hf_name, e] : tensors.items()) {
      if ((by_gguf_name ? e.at("gguf_name").get<std::string>() : hf_name) == t->name) entry = &e;
    }
    ASSERT_NE(entry, nullptr) << t->name;
    EXPECT_EQ(t->shape, entry->at("shape").get<std::vector<int64_t>>()) << t->name;
    EXPECT_EQ(digest(*t), entry->at("sha256_f32").get<std::string>()) << t->name;
    ++matched;
  }
  EXPECT_EQ(matched, static_cast<int>(tensors.size()));
}

TEST(ModelFamilies, Qwen2FromGgufAndHuggingFace) {
  const nlohmann::json m = manifest();
  const Model gguf = Model::load(testing::fixture_path("tiny_qwen2.gguf"));
  const Model hf = Model::load(testing::fixture_path("tiny_qwen2_hf"));
  for (const Model* model : {&gguf, &hf}) {
    const ModelConfig& c = model->config();
    EXPECT_EQ(c.arch, Architecture::Qwen2);
    EXPECT_TRUE(c.qkv_bias);
    EXPECT_TRUE(c.tied_embeddings);
    // llama.cpp leaves qwen2's q/k rows in Hugging Face order.
    EXPECT_EQ(c.rope_style, RopeStyle::NeoX);
    EXPECT_DOUBLE_EQ(c.rope_theta, 1000000.0);
    EXPECT_NEAR(c.rms_norm_eps, 1e-6, 1e-12);
    EXPECT_EQ(model->weight(WeightKind::AttnQBias, 1).shape, (std::vector<int64_t>{64}));
    EXPECT_EQ(model->weight(WeightKind::AttnKBias, 1).shape, (std::vector<int64_t>{32}));
  }
  expect_weights_match(gguf, m.at("qwen2"), true);
  expect_weights_match(hf, m.at("qwen2"), false);
}

TEST(ModelFamilies, MistralFromHuggingFace) {
  const Model model = Model::load(testing::fixture_path("tiny_mistral_hf"));
  EXPECT_EQ(model.config().arch, Architecture::Mistral);
  EXPECT_FALSE(model.config().qkv_bias);
  EXPECT_FALSE(model.config().tied_embeddings);
  EXPECT_EQ(model.find_weight(WeightKind::AttnQBias, 0), nullptr);
  expect_weights_match(model, manifest().at("mistral"), false);
}

TEST(ModelFamilies, ArchitectureTableNamesEveryWeightInBothFormats) {
  EXPECT_EQ(weight_name(WeightKind::FfnUp, ModelFormat::Gguf, 16), "blk.16.ffn_up.weight");
  EXPECT_EQ(weight_name(WeightKind::FfnUp, ModelFormat::HuggingFace, 16), "model.layers.16.mlp.up_proj.weight");
  EXPECT_EQ(weight_name(WeightKind::AttnVBias, ModelFormat::Gguf, 2), "blk.2.attn_v.bias");
  EXPECT_EQ(weight_name(WeightKind::Output, ModelFormat::HuggingFace, -1), "lm_head.weight");
  EXPECT_EQ(weight_name(WeightKind::RopeFreqs, ModelFormat::HuggingFace, -1), "");
  EXPECT_THROW(architecture_from_name("gpt2", "x"), Error);
  try {
    architecture_from_name("phi3", "model.gguf");
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("llama, qwen2, mistral"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace neuronlens

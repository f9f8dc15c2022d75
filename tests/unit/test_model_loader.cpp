// Model loading through both readers, and the default model's description.
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>

#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "neuronlens/runtime.h"
#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

std::vector<float> dense(const TensorView& t) {
  std::vector<float> out(static_cast<size_t>(t.elements()));
  dequantize_rows(t, 0, t.rows(), out.data());
  return out;
}

const WeightKind kAllKinds[] = {
    WeightKind::TokenEmbedding, WeightKind::OutputNorm, WeightKind::Output,     WeightKind::AttnNorm,
    WeightKind::AttnQ,          WeightKind::AttnK,      WeightKind::AttnV,      WeightKind::AttnOutput,
    WeightKind::FfnNorm,        WeightKind::FfnGate,    WeightKind::FfnUp,      WeightKind::FfnDown,
};

// llama.cpp's converter reorders q/k rows within each head so that rotary
// pairs are adjacent: GGUF row h*hd + 2i + j holds HF row h*hd + j*hd/2 + i.
int64_t hf_row_of_gguf_row(int64_t row, int64_t head_dim) {
  const int64_t h = row / head_dim, r = row % head_dim;
  return h * head_dim + (r % 2) * (head_dim / 2) + r / 2;
}

void expect_same_weights(const Model& gguf, const Model& hf) {
  const ModelConfig& c = gguf.config();
  for (WeightKind kind : kAllKinds) {
    const int64_t layers = (kind == WeightKind::TokenEmbedding || kind == WeightKind::OutputNorm ||
                            kind == WeightKind::Output) ? 1 : c.n_layers;
    for (int64_t layer = 0; layer < layers; ++layer) {
      const TensorView* a = gguf.find_weight(kind, layer);
      const TensorView* b = hf.find_weight(kind, layer);
      ASSERT_EQ(a == nullptr, b == nullptr) << weight_kind_name(kind);
      if (!a) continue;
      SCOPED_TRACE(a->name + " vs " + b->name);
      ASSERT_EQ(a->shape, b->shape);
      const std::vector<float> x = dense(*a), y = dense(*b);
      const bool permuted = kind == WeightKind::AttnQ || kind == WeightKind::AttnK;
      const int64_t cols = a->row_length();
      int64_t mismatches = 0;
      for (int64_t r = 0; r < a->rows(); ++r) {
        const int64_t hf_row = permuted ? hf_row_of_gguf_row(r, c.head_dim) : r;
        for (int64_t j = 0; j < cols; ++j) {
          mismatches += x[static_cast<size_t>(r * cols + j)] != y[static_cast<size_t>(hf_row * cols + j)];
        }
      }
      EXPECT_EQ(mismatches, 0);
    }
  }
}

TEST(ModelLoader, TinyLlamaGgufAndHuggingFaceGiveIdenticalWeights) {
  const Model gguf = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const Model hf = Model::load(testing::fixture_path("tiny_llama_hf"));
  EXPECT_EQ(gguf.format(), ModelFormat::Gguf);
  EXPECT_EQ(hf.format(), ModelFormat::HuggingFace);
  const ModelConfig &a = gguf.config(), &b = hf.config();
  EXPECT_EQ(a.n_layers, 2);
  EXPECT_EQ(a.d_model, 64);
  EXPECT_EQ(a.d_ffn, 96);
  EXPECT_EQ(a.n_heads, 4);
  EXPECT_EQ(a.n_kv_heads, 2);
  EXPECT_EQ(a.head_dim, 16);
  for (const ModelConfig* cfg : {&a, &b}) EXPECT_FALSE(cfg->tied_embeddings);
  EXPECT_EQ(a.n_layers, b.n_layers);
  EXPECT_EQ(a.vocab_size, b.vocab_size);
  EXPECT_EQ(a.rope_style, RopeStyle::Interleaved);
  EXPECT_EQ(b.rope_style, RopeStyle::NeoX);
  EXPECT_DOUBLE_EQ(a.rope_theta, b.rope_theta);
  EXPECT_NEAR(a.rms_norm_eps, b.rms_norm_eps, 1e-12);
  EXPECT_EQ(gguf.vocab().size(), hf.vocab().size());
  for (int64_t id = 0; id < gguf.vocab().size(); ++id) {
    ASSERT_EQ(gguf.vocab().token(id).bytes, hf.vocab().token(id).bytes) << "token " << id;
  }
  expect_same_weights(gguf, hf);
}

TEST(ModelLoader, TiedEmbeddingsUseTheTokenEmbeddingAsLmHead) {
  for (const char* name : {"tiny_llama_tied.gguf", "tiny_llama_tied_hf"}) {
    SCOPED_TRACE(name);
    const Model m = Model::load(testing::fixture_path(name));
    EXPECT_TRUE(m.config().tied_embeddings);
    EXPECT_EQ(m.find_weight(WeightKind::Output), nullptr);
    EXPECT_EQ(&m.lm_head(), &m.weight(WeightKind::TokenEmbedding));
  }
  const Model tied_gguf = Model::load(testing::fixture_path("tiny_llama_tied.gguf"));
  const Model tied_hf = Model::load(testing::fixture_path("tiny_llama_tied_hf"));
  expect_same_weights(tied_gguf, tied_hf);
}

TEST(ModelLoader, ShardedBf16CheckpointLoads) {
  const Model m = Model::load(testing::fixture_path("tiny_llama_hf_sharded"));
  EXPECT_EQ(m.weight(WeightKind::FfnUp, 1).type, DType::BF16);
  EXPECT_EQ(m.config().n_layers, 2);
}

TEST(ModelLoader, DefaultModelDescription) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  const Model m = Model::load(path);
  const ModelConfig& c = m.config();
  EXPECT_EQ(c.arch, Architecture::Llama);
  EXPECT_EQ(c.n_layers, 30);
  EXPECT_EQ(c.d_model, 576);
  EXPECT_EQ(c.d_ffn, 1536);
  EXPECT_EQ(c.n_heads, 9);
  EXPECT_EQ(c.n_kv_heads, 3);
  EXPECT_EQ(c.head_dim, 64);
  EXPECT_EQ(c.vocab_size, 49152);
  EXPECT_TRUE(c.tied_embeddings);
  EXPECT_EQ(c.context_length, 8192);
  EXPECT_EQ(m.vocab().size(), 49152);
  EXPECT_EQ(m.lm_head().type, DType::Q8_0);
  EXPECT_EQ(m.weight(WeightKind::FfnDown, 29).shape, (std::vector<int64_t>{576, 1536}));
  EXPECT_THROW(m.weight(WeightKind::FfnUp, 30), Error);
}

using testing::run_command;

TEST(InfoCommand, PrintsTheDefaultModelsNumbers) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  std::string out;
  ASSERT_EQ(run_command(testing::cli_path() + " info --no-timing " + path, out), 0) << out;
  for (const char* expected : {"architecture   llama", "layers         30", "hidden size    576", "FFN size       1536",
                               "9 query, 3 key-value", "vocabulary     49152", "tied to the token embedding",
                               "Q4_1", "Q8_0", "F32", "138240 vectors"}) {
    EXPECT_NE(out.find(expected), std::string::npos) << "missing '" << expected << "' in:\n" << out;
  }
  std::string json;
  ASSERT_EQ(run_command(testing::cli_path() + " info --json --no-timing " + path, json), 0) << json;
  EXPECT_NE(json.find("\"tied_embeddings\": true"), std::string::npos) << json;
  EXPECT_NE(json.find("\"layers\": 30"), std::string::npos) << json;
}

// info names the runtime's kernels; NEURONLENS_KERNEL_PATH picks others, and
// a name that is none is a bad argument.
TEST(InfoCommand, NamesTheRuntimeKernelsAndHonoursTheirOverride) {
  const std::string tiny = testing::fixture_path("tiny_llama.gguf");
  std::string out;
  ASSERT_EQ(run_command(testing::cli_path() + " info --no-timing " + tiny, out), 0) << out;
  EXPECT_NE(out.find("; " + std::string(runtime_kernel_path()) + " kernels"), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(
      run_command("NEURONLENS_KERNEL_PATH=portable " + testing::cli_path() + " info --json --no-timing " + tiny, out),
      0)
      << out;
  EXPECT_NE(out.find("\"kernel_path\": \"portable\""), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run_command("NEURONLENS_KERNEL_PATH=sse9 " + testing::cli_path() + " info --no-timing " + tiny, out), 2);
  EXPECT_NE(out.find("NEURONLENS_KERNEL_PATH=sse9: not a kernel path"), std::string::npos) << out;
}

TEST(InfoCommand, BadArgumentsExitWithCode2) {
  std::string out;
  EXPECT_EQ(run_command(testing::cli_path() + " info /no/such/model.gguf", out), 2);
  EXPECT_NE(out.find("no such file"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run_command(testing::cli_path() + " info", out), 2) << out;
  out.clear();
  EXPECT_EQ(run_command(testing::cli_path() + " frobnicate", out), 2) << out;
}

}  // namespace
}  // namespace neuronlens

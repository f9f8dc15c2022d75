// GGUF reader on the default model: header, metadata types, tensor infos.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>

#include "neuronlens/error.h"
#include "io/mapped_file.h"
#include "neuronlens/gguf.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

TEST(GgufReader, ReadsDefaultModelHeaderAndMetadata) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(f.version(), 3u);
  EXPECT_EQ(f.tensors().size(), 272u);
  EXPECT_EQ(f.keys().size(), 33u);  // gguf-py lists 33 key-value pairs
  EXPECT_EQ(f.get_string("general.architecture"), "llama");
  EXPECT_EQ(f.get_uint("llama.block_count"), 30u);
  EXPECT_EQ(f.get_uint("llama.embedding_length"), 576u);
  EXPECT_FLOAT_EQ(static_cast<float>(f.get_float("llama.rope.freq_base")), 100000.0f);
  EXPECT_FALSE(f.get_bool("tokenizer.ggml.add_bos_token"));
  EXPECT_EQ(f.get_string_array("tokenizer.ggml.tokens").size(), 49152u);
  EXPECT_EQ(f.get_int_array("tokenizer.ggml.token_type").size(), 49152u);
  EXPECT_EQ(f.get_string_array("general.languages"), std::vector<std::string>{"en"});
  EXPECT_THROW(f.get_string("llama.block_count"), Error);
  EXPECT_THROW(f.get_uint("no.such.key"), Error);
  EXPECT_EQ(f.get_uint_or("no.such.key", 7), 7u);
}

TEST(GgufReader, TensorInfosMatchGgufPy) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  const GgufFile f = GgufFile::open(path);
  // Values from gguf.GGUFReader: name, type, ne (innermost first), data offset.
  const TensorView* embd = f.find_tensor("token_embd.weight");
  ASSERT_NE(embd, nullptr);
  EXPECT_EQ(embd->type, DType::Q8_0);
  EXPECT_EQ(embd->shape, (std::vector<int64_t>{49152, 576}));
  EXPECT_EQ(embd->data - f.mapping()->data(), 1785664);
  EXPECT_EQ(embd->nbytes, 30081024);
  const TensorView* down = f.find_tensor("blk.0.ffn_down.weight");
  ASSERT_NE(down, nullptr);
  EXPECT_EQ(down->type, DType::Q4_1);
  EXPECT_EQ(down->shape, (std::vector<int64_t>{576, 1536}));
  EXPECT_EQ(down->data - f.mapping()->data(), 31868992);
  EXPECT_EQ(down->nbytes, 552960);
  EXPECT_EQ(f.find_tensor("output.weight"), nullptr);
}

}  // namespace
}  // namespace neuronlens

namespace neuronlens {
namespace {

// GGUF v2 and v3 share one little-endian layout (v3 only added big-endian
// files), so a v3 file relabelled as v2 must read the same.
TEST(GgufReader, ReadsVersion2Files) {
  const std::string v3 = testing::fixture_path("tiny_llama.gguf");
  const std::string v2 = ::testing::TempDir() + "tiny_llama_v2.gguf";
  {
    std::ifstream in(v3, std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    ASSERT_GT(bytes.size(), 8u);
    const uint32_t version = 2;
    std::memcpy(bytes.data() + 4, &version, 4);
    std::ofstream(v2, std::ios::binary) << bytes;
  }
  const GgufFile a = GgufFile::open(v3), b = GgufFile::open(v2);
  EXPECT_EQ(a.version(), 3u);
  EXPECT_EQ(b.version(), 2u);
  ASSERT_EQ(a.tensors().size(), b.tensors().size());
  for (size_t i = 0; i < a.tensors().size(); ++i) {
    EXPECT_EQ(a.tensors()[i].name, b.tensors()[i].name);
    EXPECT_EQ(a.tensors()[i].shape, b.tensors()[i].shape);
    EXPECT_EQ(0, std::memcmp(a.tensors()[i].data, b.tensors()[i].data, static_cast<size_t>(a.tensors()[i].nbytes)));
  }
  EXPECT_EQ(a.keys(), b.keys());
}

}  // namespace
}  // namespace neuronlens

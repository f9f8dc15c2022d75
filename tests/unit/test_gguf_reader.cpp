// GGUF reader on the default model: header, metadata types, tensor infos.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <string>
#include <variant>
#include <vector>

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

namespace neuronlens {
namespace {

// A metadata-only GGUF written byte by byte (no tensors: the file may end
// right after the metadata, as llama.cpp's vocab-only files do).
class GgufWriter {
 public:
  template <typename T>
  GgufWriter& raw(T v) {
    bytes_.append(reinterpret_cast<const char*>(&v), sizeof v);
    return *this;
  }
  GgufWriter& str(const std::string& s) {
    raw<uint64_t>(s.size());
    bytes_ += s;
    return *this;
  }
  // key | type ARRAY | element type | count; the caller appends the elements.
  GgufWriter& array(const std::string& key, GgufValueType element, uint64_t count) {
    ++keys_;
    str(key).raw(static_cast<uint32_t>(GgufValueType::ARRAY)).raw(static_cast<uint32_t>(element)).raw(count);
    return *this;
  }
  std::string write(const std::string& path) const {
    std::string file = "GGUF";
    const uint32_t version = 3;
    const uint64_t tensors = 0;
    file.append(reinterpret_cast<const char*>(&version), 4);
    file.append(reinterpret_cast<const char*>(&tensors), 8);
    file.append(reinterpret_cast<const char*>(&keys_), 8);
    std::ofstream(path, std::ios::binary) << file << bytes_;
    return path;
  }

 private:
  std::string bytes_;
  uint64_t keys_ = 0;
};

// Number and bool arrays are views into the mapping, read on access; strings
// are views too; arrays of arrays are held element by element.
TEST(GgufReader, ArraysOfEveryKind) {
  GgufWriter w;
  w.array("t.u8", GgufValueType::U8, 3).raw<uint8_t>(0).raw<uint8_t>(7).raw<uint8_t>(255);
  w.array("t.i16", GgufValueType::I16, 2).raw<int16_t>(-300).raw<int16_t>(300);
  w.array("t.f32", GgufValueType::F32, 2).raw<float>(0.5f).raw<float>(-2.0f);
  w.array("t.bool", GgufValueType::BOOL, 2).raw<uint8_t>(1).raw<uint8_t>(0);
  w.array("t.str", GgufValueType::STRING, 2).str("a b").str("");
  w.array("t.nested", GgufValueType::ARRAY, 2);
  w.raw(static_cast<uint32_t>(GgufValueType::U32)).raw<uint64_t>(2).raw<uint32_t>(1).raw<uint32_t>(2);
  w.raw(static_cast<uint32_t>(GgufValueType::STRING)).raw<uint64_t>(1).str("x");
  const GgufFile f = GgufFile::open(w.write(::testing::TempDir() + "arrays.gguf"));

  EXPECT_EQ(f.get_int_array("t.u8"), (std::vector<int64_t>{0, 7, 255}));
  EXPECT_EQ(f.get_int_array("t.i16"), (std::vector<int64_t>{-300, 300}));
  EXPECT_EQ(f.get_float_array("t.f32"), (std::vector<double>{0.5, -2.0}));
  EXPECT_EQ(f.get_float_array("t.u8"), (std::vector<double>{0, 7, 255}));
  EXPECT_EQ(f.get_string_array("t.str"), (std::vector<std::string>{"a b", ""}));
  EXPECT_EQ(f.get_array_size("t.u8"), 3u);
  EXPECT_EQ(f.get_array_size("t.nested"), 2u);

  const GgufArray* bools = f.find("t.bool")->array();
  ASSERT_NE(bools, nullptr);
  EXPECT_EQ(bools->element_type(), GgufValueType::BOOL);
  EXPECT_EQ(bools->at(0).type, GgufValueType::BOOL);
  EXPECT_TRUE(std::get<bool>(bools->at(0).value));
  EXPECT_FALSE(std::get<bool>(bools->at(1).value));

  const GgufArray* nested = f.find("t.nested")->array();
  ASSERT_NE(nested, nullptr);
  EXPECT_EQ(nested->element_type(), GgufValueType::ARRAY);
  EXPECT_EQ(nested->array_at(0).element_type(), GgufValueType::U32);
  EXPECT_EQ(std::get<uint64_t>(nested->array_at(0).at(1).value), 2u);
  EXPECT_EQ(nested->array_at(1).string_at(0), "x");
  EXPECT_EQ(f.find("t.u8")->array(), f.find("t.u8")->array());
  EXPECT_EQ(f.find("no.such.key"), nullptr);
}

// The error for `call`, which must throw a BadFile Error.
template <typename Call>
std::string bad_file_message(Call&& call) {
  try {
    call();
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadFile) << e.what();
    return e.what();
  }
  return "(no error)";
}

TEST(GgufReader, ArraysOfTheWrongKindAreRefusedNamingTheKey) {
  GgufWriter w;
  w.array("t.f32", GgufValueType::F32, 1).raw<float>(0.5f);
  w.array("t.nested", GgufValueType::ARRAY, 1).raw(static_cast<uint32_t>(GgufValueType::U8)).raw<uint64_t>(0);
  w.array("t.str", GgufValueType::STRING, 1).str("a");
  const std::string path = w.write(::testing::TempDir() + "wrong_arrays.gguf");
  const GgufFile f = GgufFile::open(path);
  EXPECT_EQ(bad_file_message([&] { f.get_int_array("t.f32"); }),
            path + ": metadata key 't.f32' has type float32, expected an integer");
  EXPECT_EQ(bad_file_message([&] { f.get_int_array("t.nested"); }),
            path + ": metadata key 't.nested' has type array of array, expected array of integers");
  EXPECT_EQ(bad_file_message([&] { f.get_float_array("t.str"); }),
            path + ": metadata key 't.str' has type string, expected a number");
  EXPECT_EQ(bad_file_message([&] { f.get_string_array("t.f32"); }),
            path + ": metadata key 't.f32' has type array of float32, expected array of string");
  EXPECT_EQ(bad_file_message([&] { f.get_array_size("t.missing"); }), path + ": metadata key 't.missing' is missing");
}

TEST(GgufReader, BoolArrayElementsAreChecked) {
  GgufWriter w;
  w.array("t.bool", GgufValueType::BOOL, 3).raw<uint8_t>(1).raw<uint8_t>(0).raw<uint8_t>(2);
  const std::string path = w.write(::testing::TempDir() + "bad_bool_array.gguf");
  EXPECT_EQ(bad_file_message([&] { GgufFile::open(path); }),
            path + ": metadata key 't.bool' is an array of bool with byte value 2 at index 2, expected 0 or 1");
}

}  // namespace
}  // namespace neuronlens

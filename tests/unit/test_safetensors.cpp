// Safetensors reader: the generated tiny Llama (F32 single file, BF16 in two
// shards) checked against the digests in tiny_llama_manifest.json, and a
// corpus of broken files and index.json files, one per defect class, each
// with the error it must give.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include <unistd.h>

#include "io/sha256.h"
#include "neuronlens/error.h"
#include "neuronlens/safetensors.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Json = nlohmann::json;

Json read_manifest() {
  std::ifstream in(testing::fixture_path("tiny_llama_manifest.json"));
  if (!in) {
    ADD_FAILURE() << "missing " << testing::fixture_path("tiny_llama_manifest.json")
                  << " (written by scripts/fixtures/gen_tiny_llama.py)";
    return Json::object();
  }
  return Json::parse(in);
}

// SHA-256 of the tensor dequantised to float32, C order: what the manifest lists.
std::string float32_digest(const TensorView& tensor) {
  std::vector<float> values(static_cast<size_t>(tensor.elements()));
  dequantize_rows(tensor, 0, tensor.rows(), values.data());
  Sha256 hash;
  hash.update(values.data(), values.size() * sizeof(float));
  return hash.hex_digest();
}

std::vector<int64_t> manifest_shape(const Json& entry) { return entry.at("shape").get<std::vector<int64_t>>(); }

TEST(SafetensorsFile, ReadsTinyLlamaF32) {
  const Json manifest = read_manifest();
  const SafetensorsFile file = SafetensorsFile::open(testing::fixture_path("tiny_llama_hf/model.safetensors"));
  const Json& tensors = manifest.at("tensors");
  ASSERT_EQ(file.tensors().size(), tensors.size());
  for (const auto& [name, entry] : tensors.items()) {
    SCOPED_TRACE(name);
    const TensorView* view = file.find_tensor(name);
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->name, name);
    EXPECT_EQ(view->type, DType::F32);
    EXPECT_EQ(view->shape, manifest_shape(entry));
    EXPECT_EQ(view->nbytes, view->elements() * 4);
    EXPECT_EQ(float32_digest(*view), entry.at("sha256_f32").get<std::string>());
  }
  EXPECT_EQ(file.find_tensor("model.layers.2.mlp.up_proj.weight"), nullptr);
  EXPECT_EQ(file.metadata().at("format"), "pt");

  // tensors() is in data order and the views tile the data section.
  for (size_t i = 1; i < file.tensors().size(); ++i) {
    EXPECT_EQ(file.tensors()[i - 1].data + file.tensors()[i - 1].nbytes, file.tensors()[i].data);
  }
}

TEST(SafetensorsCheckpoint, OpensShardedBf16Folder) {
  const Json manifest = read_manifest();
  const SafetensorsCheckpoint checkpoint =
      SafetensorsCheckpoint::open_folder(testing::fixture_path("tiny_llama_hf_sharded"));
  ASSERT_EQ(checkpoint.files().size(), 2u);
  const Json& tensors = manifest.at("tensors");
  EXPECT_EQ(checkpoint.tensors().size(), tensors.size());
  for (const auto& [name, entry] : tensors.items()) {
    SCOPED_TRACE(name);
    const TensorView* view = checkpoint.find_tensor(name);
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view->type, DType::BF16);
    EXPECT_EQ(view->shape, manifest_shape(entry));
    EXPECT_EQ(float32_digest(*view), entry.at("sha256_bf16").get<std::string>());
    // The view lies inside the shard the manifest (and the index) names.
    const std::string shard = entry.at("shard").get<std::string>();
    const auto* owner = &checkpoint.files()[shard == "model-00001-of-00002.safetensors" ? 0 : 1];
    EXPECT_EQ(fs::path(owner->path()).filename(), shard);
    EXPECT_EQ(owner->find_tensor(name), view);
  }
  EXPECT_EQ(checkpoint.find_tensor("lm_head.bias"), nullptr);
}

TEST(SafetensorsCheckpoint, OpensSingleFileAndTiedFolders) {
  const Json manifest = read_manifest();
  const SafetensorsCheckpoint single = SafetensorsCheckpoint::open_folder(testing::fixture_path("tiny_llama_hf"));
  ASSERT_EQ(single.files().size(), 1u);
  EXPECT_EQ(single.tensors().size(), manifest.at("tensors").size());

  const SafetensorsCheckpoint tied = SafetensorsCheckpoint::open_folder(testing::fixture_path("tiny_llama_tied_hf"));
  EXPECT_EQ(tied.find_tensor("lm_head.weight"), nullptr);
  for (const auto& [name, entry] : manifest.at("tensors").items()) {
    if (!entry.at("in_tied").get<bool>()) continue;
    SCOPED_TRACE(name);
    const TensorView* view = tied.find_tensor(name);
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(float32_digest(*view), entry.at("sha256_f32").get<std::string>());
  }
}

TEST(SafetensorsCheckpoint, CopiesAndMovesKeepTheirOwnViews) {
  auto original = std::make_unique<SafetensorsCheckpoint>(
      SafetensorsCheckpoint::open_folder(testing::fixture_path("tiny_llama_hf_sharded")));
  const SafetensorsCheckpoint copy = *original;
  const SafetensorsCheckpoint moved = std::move(*original);
  original.reset();
  for (const SafetensorsCheckpoint* checkpoint : {&copy, &moved}) {
    const TensorView* view = checkpoint->find_tensor("model.norm.weight");
    ASSERT_NE(view, nullptr);
    EXPECT_EQ(view, checkpoint->files()[1].find_tensor("model.norm.weight"));
    EXPECT_EQ(view->shape, (std::vector<int64_t>{64}));
  }
}

// ---------------------------------------------------------------------------
// Hand-made files: valid edge cases and one broken file per defect class.

class SafetensorsTempDir : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::temp_directory_path() /
           ("neuronlens_safetensors_" + std::string(info->name()) + "_" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  std::string write_raw(const std::string& name, const std::string& bytes) const {
    const fs::path path = dir_ / name;
    std::ofstream(path, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    return path.string();
  }

  // A safetensors file: u64 little-endian header length, header, `data_bytes` bytes.
  std::string write_safetensors(const std::string& name, const std::string& header, size_t data_bytes) const {
    std::string bytes(8, '\0');
    uint64_t length = header.size();
    for (int i = 0; i < 8; ++i) bytes[static_cast<size_t>(i)] = static_cast<char>((length >> (8 * i)) & 0xff);
    bytes += header;
    bytes += std::string(data_bytes, '\x11');
    return write_raw(name, bytes);
  }

  fs::path dir_;
};

// The message of the Error that `open` throws, or a failure if it does not throw.
template <typename Open>
std::string error_of(Open&& open) {
  try {
    open();
  } catch (const Error& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("wrong exception type: ") + e.what();
  }
  return "no error";
}

TEST_F(SafetensorsTempDir, ReadsScalarsEmptyTensorsAndHalfTypes) {
  // A scalar (shape [] = 1 element), an empty tensor, an F16 and a BF16 vector.
  const std::string path = write_safetensors("edge.safetensors",
      R"({"scalar":{"dtype":"F32","shape":[],"data_offsets":[0,4]},)"
      R"("empty":{"dtype":"F32","shape":[0,3],"data_offsets":[4,4]},)"
      R"("half":{"dtype":"F16","shape":[2],"data_offsets":[4,8]},)"
      R"("brain":{"dtype":"BF16","shape":[1,2],"data_offsets":[8,12]}})", 12);
  const SafetensorsFile file = SafetensorsFile::open(path);
  ASSERT_EQ(file.tensors().size(), 4u);
  const TensorView* scalar = file.find_tensor("scalar");
  ASSERT_NE(scalar, nullptr);
  EXPECT_TRUE(scalar->shape.empty());
  EXPECT_EQ(scalar->elements(), 1);
  EXPECT_EQ(scalar->nbytes, 4);
  const TensorView* empty = file.find_tensor("empty");
  ASSERT_NE(empty, nullptr);
  EXPECT_EQ(empty->elements(), 0);
  EXPECT_EQ(file.find_tensor("half")->type, DType::F16);
  EXPECT_EQ(file.find_tensor("brain")->type, DType::BF16);
  EXPECT_EQ(file.find_tensor("brain")->shape, (std::vector<int64_t>{1, 2}));
  EXPECT_TRUE(file.metadata().empty());

  // No tensors at all is a valid (empty) file.
  EXPECT_TRUE(SafetensorsFile::open(write_safetensors("none.safetensors", "{}", 0)).tensors().empty());
}

struct BrokenFile {
  const char* defect;
  std::string header;  // JSON text after the length field
  size_t data_bytes;
  const char* expected;  // phrase the error must contain
};

TEST_F(SafetensorsTempDir, RejectsEachDefectClassWithAClearError) {
  const std::string ok = R"("dtype":"F32","shape":[2],"data_offsets":[0,8])";
  const std::vector<BrokenFile> cases = {
      {"not json", "{\"a\": ", 0, "not valid JSON"},
      {"not an object", "[1, 2]", 0, "header is a JSON array, expected an object"},
      {"entry not an object", R"({"a": 5})", 0, "tensor 'a' entry is a JSON non-negative integer"},
      {"missing dtype", R"({"a":{"shape":[2],"data_offsets":[0,8]}})", 8, "has no \"dtype\""},
      {"missing shape", R"({"a":{"dtype":"F32","data_offsets":[0,8]}})", 8, "has no \"shape\""},
      {"missing offsets", R"({"a":{"dtype":"F32","shape":[2]}})", 8, "has no \"data_offsets\""},
      {"dtype not a string", R"({"a":{"dtype":7,"shape":[2],"data_offsets":[0,8]}})", 8, "dtype is a JSON"},
      {"unsupported dtype", R"({"a":{"dtype":"I64","shape":[1],"data_offsets":[0,8]}})", 8,
       "tensor 'a' has dtype \"I64\", which neuronlens cannot read; supported: F32, F16, BF16"},
      {"shape not an array", R"({"a":{"dtype":"F32","shape":"2","data_offsets":[0,8]}})", 8,
       "shape is a JSON string, expected an array"},
      {"negative dim", R"({"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}})", 8,
       "shape dimension 0 is -2 (a negative integer), expected a non-negative integer"},
      {"non-integer dim", R"({"a":{"dtype":"F32","shape":[2, 1.5],"data_offsets":[0,8]}})", 8,
       "shape dimension 1 is 1.5 (a non-integer number)"},
      {"too many elements", R"({"a":{"dtype":"F32","shape":[4611686018427387904,4],"data_offsets":[0,8]}})", 8,
       "too many elements"},
      {"offsets not a pair", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0]}})", 8,
       "expected an array [begin, end]"},
      {"negative offset", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[-8,0]}})", 8,
       "expected non-negative integers"},
      {"offset beyond int64", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,18446744073709551615]}})", 8,
       "expected non-negative integers"},
      {"begin after end", R"({"a":{"dtype":"F32","shape":[0],"data_offsets":[8,0]}})", 8, "end before they begin"},
      {"end past data", R"({"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}})", 8,
       "end past the data section, which has only 8 bytes"},
      {"byte count mismatch", R"({"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8,
       "tensor 'a' has shape [3] of F32, which needs 12 bytes, but data_offsets [0, 8) hold 8"},
      {"overlap", R"({"a":{)" + ok + R"(},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}})", 12,
       "tensors 'a' (bytes [0, 8)) and 'b' (bytes [4, 12)) overlap"},
      {"hole between tensors", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},)"
                               R"("b":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}})", 12,
       "hole in the data section: bytes [4, 8) belong to no tensor (after 'a', before 'b')"},
      {"hole at start", R"({"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}})", 8,
       "hole in the data section: bytes [0, 4) belong to no tensor (at the start"},
      {"bytes after last tensor", R"({"a":{)" + ok + "}}", 12,
       "the data section has 12 bytes but the tensors cover only the first 8"},
      {"duplicate tensor name", R"({"a":{)" + ok + R"(},"a":{)" + ok + "}}", 8, "tensor name 'a' appears twice"},
      {"duplicate key in entry", R"({"a":{"dtype":"F32",)" + ok + "}}", 8, "key 'dtype' appears twice"},
      {"empty tensor name", R"({"":{)" + ok + "}}", 8, "a tensor has an empty name"},
      {"metadata not an object", R"({"__metadata__":[1]})", 0, "'__metadata__' is a JSON array"},
      {"metadata value not a string", R"({"__metadata__":{"format":1}})", 0,
       "'__metadata__' key 'format' is a JSON non-negative integer, expected a string"},
      {"invalid UTF-8", "{\"\xff\":{" + ok + "}}", 8, "not valid JSON"},
  };
  for (size_t i = 0; i < cases.size(); ++i) {
    const BrokenFile& c = cases[i];
    SCOPED_TRACE(c.defect);
    const std::string path = write_safetensors("bad" + std::to_string(i) + ".safetensors", c.header, c.data_bytes);
    const std::string message = error_of([&] { SafetensorsFile::open(path); });
    EXPECT_THAT(message, HasSubstr(c.expected));
    EXPECT_THAT(message, HasSubstr(path));  // every message names the file
  }
}

TEST_F(SafetensorsTempDir, RejectsBadHeaderLengths) {
  const std::string short_file = write_raw("short.safetensors", std::string("\x02\x00\x00", 3));
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(short_file); }),
              HasSubstr("file is 3 bytes, too short for the 8-byte header length"));

  // Claims a 1000-byte header; 10 bytes follow.
  std::string truncated("\xe8\x03\x00\x00\x00\x00\x00\x00", 8);
  const std::string truncated_file = write_raw("truncated.safetensors", truncated + "{}        ");
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(truncated_file); }),
              HasSubstr("header length is 1000 bytes, but only 10 bytes follow the length field"));

  // 2^40 bytes: over the 100 MB limit, whatever the file size.
  std::string huge("\x00\x00\x00\x00\x00\x01\x00\x00", 8);
  const std::string huge_file = write_raw("huge.safetensors", huge + "{}");
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(huge_file); }),
              HasSubstr("header length is 1099511627776 bytes, more than the limit of 100000000"));

  const std::string zero_length = write_raw("zero.safetensors", std::string(8, '\0'));
  EXPECT_THAT(error_of([&] { SafetensorsFile::open(zero_length); }), HasSubstr("not valid JSON"));
}

// ---------------------------------------------------------------------------
// Sharded folders with a broken model.safetensors.index.json.

class SafetensorsIndex : public SafetensorsTempDir {
 protected:
  // Two valid shards: "a" in one.safetensors, "b" in two.safetensors.
  void SetUp() override {
    SafetensorsTempDir::SetUp();
    write_safetensors("one.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8);
    write_safetensors("two.safetensors", R"({"b":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})", 4);
  }
  std::string open_with_index(const std::string& index_json) const {
    write_raw("model.safetensors.index.json", index_json);
    return error_of([&] { SafetensorsCheckpoint::open_folder(dir_.string()); });
  }
};

TEST_F(SafetensorsIndex, OpensAValidIndex) {
  write_raw("model.safetensors.index.json",
            R"({"metadata":{"total_size":12},"weight_map":{"a":"one.safetensors","b":"two.safetensors"}})");
  const SafetensorsCheckpoint checkpoint = SafetensorsCheckpoint::open_folder(dir_.string());
  EXPECT_EQ(checkpoint.files().size(), 2u);
  ASSERT_NE(checkpoint.find_tensor("a"), nullptr);
  EXPECT_EQ(checkpoint.find_tensor("b")->type, DType::BF16);
  EXPECT_EQ(checkpoint.tensors().size(), 2u);
}

TEST_F(SafetensorsIndex, RejectsEachDefectClassWithAClearError) {
  struct BrokenIndex {
    const char* defect;
    std::string index;
    const char* expected;
  };
  const std::vector<BrokenIndex> cases = {
      {"not json", "{\"weight_map\": {", "not valid JSON"},
      {"not an object", "[]", "is a JSON array, expected an object with a \"weight_map\""},
      {"no weight_map", R"({"metadata":{}})", "has no \"weight_map\""},
      {"weight_map not an object", R"({"weight_map":["one.safetensors"]})", "\"weight_map\" is a JSON array"},
      {"shard name not a string", R"({"weight_map":{"a":1}})",
       "weight_map entry of tensor 'a' is a JSON non-negative integer, expected a shard file name"},
      {"shard outside the folder", R"({"weight_map":{"a":"../one.safetensors"}})",
       "weight_map names shard '../one.safetensors' for tensor 'a'; expected a plain file name"},
      {"shard in a subfolder", R"({"weight_map":{"a":"sub/one.safetensors"}})", "expected a plain file name"},
      {"absolute shard path", R"({"weight_map":{"a":"/etc/passwd"}})", "expected a plain file name"},
      {"missing shard", R"({"weight_map":{"a":"one.safetensors","b":"three.safetensors"}})",
       "shard 'three.safetensors' (holding tensor 'b') is missing from the folder"},
      {"tensor in another shard", R"({"weight_map":{"a":"one.safetensors","b":"one.safetensors"}})",
       "tensor 'b' is mapped to shard 'one.safetensors', but that shard has no such tensor"},
      {"tensor in the wrong shard", R"({"weight_map":{"a":"two.safetensors","b":"one.safetensors"}})",
       "tensor 'a' is mapped to shard 'two.safetensors', but it is in shard 'one.safetensors'"},
      {"tensor in no shard", R"({"weight_map":{"a":"one.safetensors","b":"two.safetensors","c":"two.safetensors"}})",
       "tensor 'c' is mapped to shard 'two.safetensors', but that shard has no such tensor"},
      {"tensor listed twice", R"({"weight_map":{"a":"one.safetensors","a":"two.safetensors"}})",
       "tensor 'a' is listed twice in the weight map"},
  };
  for (const BrokenIndex& c : cases) {
    SCOPED_TRACE(c.defect);
    const std::string message = open_with_index(c.index);
    EXPECT_THAT(message, HasSubstr(c.expected));
    EXPECT_THAT(message, HasSubstr("model.safetensors.index.json"));
  }
}

TEST_F(SafetensorsIndex, RejectsATensorStoredInTwoShards) {
  write_safetensors("three.safetensors", R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}})", 8);
  EXPECT_THAT(open_with_index(R"({"weight_map":{"a":"one.safetensors","b":"two.safetensors","x":"three.safetensors"}})"),
              HasSubstr("tensor 'a' is in two shards"));
}

TEST_F(SafetensorsIndex, NamesTheShardWhenAShardIsBroken) {
  write_safetensors("three.safetensors", R"({"c":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}})", 8);
  const std::string message =
      open_with_index(R"({"weight_map":{"a":"one.safetensors","b":"two.safetensors","c":"three.safetensors"}})");
  EXPECT_THAT(message, HasSubstr("three.safetensors: tensor 'c' has shape [3] of F32, which needs 12 bytes"));
}

TEST_F(SafetensorsTempDir, RejectsFoldersWithoutWeights) {
  EXPECT_THAT(error_of([&] { SafetensorsCheckpoint::open_folder(dir_.string()); }),
              HasSubstr("has neither model.safetensors nor model.safetensors.index.json"));
  const std::string file = write_raw("config.json", "{}");
  EXPECT_THAT(error_of([&] { SafetensorsCheckpoint::open_folder(file); }), HasSubstr("not a folder"));
  EXPECT_THAT(error_of([&] { SafetensorsCheckpoint::open_folder((dir_ / "no_such_folder").string()); }),
              HasSubstr("not a folder"));
}

}  // namespace
}  // namespace neuronlens

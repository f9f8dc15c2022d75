// GGUF model files (versions 2 and 3), read through a memory mapping.
//
// File layout (all little-endian):
//   u32 magic "GGUF" | u32 version | u64 tensor_count | u64 kv_count
//   kv_count x { string key | u32 value_type | value }
//   tensor_count x { string name | u32 n_dims | u64 ne[n_dims] | u32 ggml_type | u64 offset }
//   padding to `general.alignment` (default 32)
//   tensor data; each tensor at data_start + offset, offsets aligned
// A string is u64 length + bytes (no terminator). An array value is
// u32 element_type | u64 count | count values. ne[0] is the row length.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <variant>
#include <vector>

#include "neuronlens/tensor.h"

namespace neuronlens {

class MappedFile;

enum class GgufValueType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7,
  STRING = 8, ARRAY = 9, U64 = 10, I64 = 11, F64 = 12,
};
std::string_view gguf_value_type_name(GgufValueType type);

struct GgufValue;

// A metadata array. Numbers and bools are not copied: they stay in the
// mapping, count x width bytes, and are read on access; strings are views into
// the mapping; only arrays of arrays are held element by element. So a vocabulary
// of 256k token types costs nothing beyond the file, and a hostile array can
// make no allocation the file does not pay for (the reader's budget,
// gguf_reader.cpp). Views stay valid while the GgufFile (its mapping) lives.
class GgufArray {
 public:
  GgufValueType element_type() const { return element_type_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

  // Element i (< size()) of a number, bool or string array, as a GgufValue.
  GgufValue at(size_t i) const;
  // Element i of a string array / an array of arrays.
  std::string_view string_at(size_t i) const { return strings_[i]; }
  const GgufArray& array_at(size_t i) const { return arrays_[i]; }

 private:
  GgufValueType element_type_ = GgufValueType::U8;
  size_t size_ = 0;
  const uint8_t* numbers_ = nullptr;       // number and bool arrays: size_ packed little-endian values
  std::vector<std::string_view> strings_;  // string arrays
  std::vector<GgufArray> arrays_;          // arrays of arrays

  friend class GgufParser;
};

// One metadata value. Integers of every width are held as int64 or uint64
// (by signedness), floats as double; `type` keeps the type written in the file.
struct GgufValue {
  GgufValueType type = GgufValueType::U8;
  std::variant<uint64_t, int64_t, double, bool, std::string, GgufArray> value;

  bool is_integer() const;
  bool is_float() const { return std::holds_alternative<double>(value); }
  // The array, or nullptr when the value is not one.
  const GgufArray* array() const { return std::get_if<GgufArray>(&value); }
};

class GgufFile {
 public:
  // Opens and validates `path`: magic, version, counts against the file size,
  // key and tensor-name uniqueness, type ids, shapes, offsets, alignment and
  // bounds of every tensor. Throws Error naming the file and the defect.
  static GgufFile open(const std::string& path);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  int64_t data_offset() const { return data_offset_; }
  int64_t file_size() const;

  // Metadata, in file order and by key.
  const std::vector<std::string>& keys() const { return keys_; }
  const GgufValue* find(const std::string& key) const;
  // Where metadata entry i (keys()[i]) lies in the file: [first, second)
  // bytes, its key, type and value as written, for a writer that copies it.
  std::pair<int64_t, int64_t> key_span(size_t i) const { return key_spans_[i]; }
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed getters: throw Error naming the file and key if the key is missing
  // or holds another type (any integer type converts if in range).
  uint64_t get_uint(const std::string& key) const;
  double get_float(const std::string& key) const;
  bool get_bool(const std::string& key) const;
  const std::string& get_string(const std::string& key) const;
  // The number of elements of an array (to check it before converting).
  size_t get_array_size(const std::string& key) const;
  std::vector<std::string> get_string_array(const std::string& key) const;
  std::vector<int64_t> get_int_array(const std::string& key) const;
  std::vector<double> get_float_array(const std::string& key) const;
  // Same, with a default when the key is absent (wrong type still throws).
  uint64_t get_uint_or(const std::string& key, uint64_t fallback) const;
  double get_float_or(const std::string& key, double fallback) const;
  bool get_bool_or(const std::string& key, bool fallback) const;
  std::string get_string_or(const std::string& key, const std::string& fallback) const;

  // Tensors in file order; views point into the mapping.
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find_tensor(const std::string& name) const;

  const std::shared_ptr<MappedFile>& mapping() const { return file_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  int64_t data_offset_ = 0;
  std::vector<std::string> keys_;
  std::vector<std::pair<int64_t, int64_t>> key_spans_;  // [keys_.size()]
  std::unordered_map<std::string, GgufValue> metadata_;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> tensor_index_;

  friend class GgufParser;
};

}  // namespace neuronlens

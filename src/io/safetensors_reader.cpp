// Parses and validates safetensors files and Hugging Face checkpoint folders
// (layout: include/neuronlens/safetensors.h).
//
// The checks follow the reference Rust reader (huggingface/safetensors): the
// header is at most 100 MB, every entry's byte range matches its dtype and
// shape, and the entries tile the data section exactly — starting at 0, no
// overlaps, no holes, nothing after the last tensor. On top of that, a key that
// appears twice in any JSON object is an error: nlohmann/json would silently
// keep the last one, so a hostile header could shadow a tensor.
#include <algorithm>
#include <filesystem>
#include <functional>
#include <limits>
#include <optional>
#include <set>
#include <string_view>
#include <tuple>

#include <nlohmann/json.hpp>

#include "io/json_input.h"
#include "io/mapped_file.h"
#include "neuronlens/error.h"
#include "neuronlens/safetensors.h"

namespace neuronlens {
namespace {

using Json = nlohmann::json;

constexpr int64_t kHeaderLengthBytes = 8;               // u64 little-endian before the JSON
constexpr uint64_t kMaxHeaderBytes = 100'000'000;        // the reference reader's limit
constexpr int64_t kMaxIndexBytes = 100'000'000;          // model.safetensors.index.json
constexpr const char* kSingleFileName = "model.safetensors";
constexpr const char* kIndexFileName = "model.safetensors.index.json";

// Parses `text` as JSON, throwing Error (prefixed with `source`) if it is not
// well-formed, nests deeper than kMaxJsonDepth or has a key twice in an
// object. `describe_duplicate` turns the key and the nesting depth of its
// object (1 = top level) into the message.
Json parse_json_strict(std::string_view text, const std::string& source,
                       const std::function<std::string(const std::string&, size_t)>& describe_duplicate) {
  std::vector<std::set<std::string>> open_objects;  // keys seen so far in each enclosing object
  auto track_keys = [&](int /*depth*/, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start: open_objects.emplace_back(); break;
      case Json::parse_event_t::object_end: open_objects.pop_back(); break;
      case Json::parse_event_t::key: {
        const auto& key = parsed.get_ref<const std::string&>();
        if (!open_objects.back().insert(key).second) {
          throw bad_file(source + ": " + describe_duplicate(key, open_objects.size()));
        }
        break;
      }
      default: break;
    }
    return true;
  };
  return parse_json_input(text, source, ErrorKind::BadFile, track_keys);
}

std::string json_type(const Json& value) {
  if (value.is_number_unsigned()) return "non-negative integer";
  if (value.is_number_integer()) return "negative integer";
  if (value.is_number_float()) return "non-integer number";
  return value.type_name();
}

std::optional<DType> safetensors_dtype(const std::string& name) {
  if (name == "F32") return DType::F32;
  if (name == "F16") return DType::F16;
  if (name == "BF16") return DType::BF16;
  return std::nullopt;
}

[[noreturn]] void fail_in(const std::string& path, const std::string& what) { throw bad_file(path + ": " + what); }

std::string range_string(uint64_t begin, uint64_t end) {
  // Appended piece by piece: GCC 12 warns falsely (-Wrestrict) on "[" + std::to_string(...).
  std::string text = "[";
  text += std::to_string(begin);
  text += ", ";
  text += std::to_string(end);
  text += ")";
  return text;
}

}  // namespace

// Turns the JSON header of one file into validated tensor views.
class SafetensorsParser {
  struct Entry {
    TensorView view;
    uint64_t begin;  // byte range [begin, end) within the data section
    uint64_t end;
  };

 public:
  explicit SafetensorsParser(SafetensorsFile& out) : out_(out) {}

  void parse() {
    const uint8_t* bytes = out_.file_->data();
    const int64_t file_size = out_.file_->size();
    if (file_size < kHeaderLengthBytes) {
      fail("file is " + std::to_string(file_size) +
           " bytes, too short for the 8-byte header length of a safetensors file");
    }
    uint64_t header_bytes = 0;
    for (int i = 7; i >= 0; --i) header_bytes = header_bytes << 8 | bytes[i];  // little-endian on any host
    if (header_bytes > kMaxHeaderBytes) {
      fail("header length is " + std::to_string(header_bytes) + " bytes, more than the limit of " +
           std::to_string(kMaxHeaderBytes) + " (not a safetensors file?)");
    }
    const uint64_t after_length = static_cast<uint64_t>(file_size - kHeaderLengthBytes);
    if (header_bytes > after_length) {
      fail("header length is " + std::to_string(header_bytes) + " bytes, but only " +
           std::to_string(after_length) + " bytes follow the length field (file truncated?)");
    }
    const std::string_view header_text(reinterpret_cast<const char*>(bytes + kHeaderLengthBytes), header_bytes);
    data_ = bytes + kHeaderLengthBytes + header_bytes;
    data_bytes_ = after_length - header_bytes;

    const Json header = parse_json_strict(header_text, out_.path_ + ": header", [](const std::string& key, size_t depth) {
      return depth == 1 ? "tensor name '" + key + "' appears twice"
                        : "key '" + key + "' appears twice in the same object";
    });
    if (!header.is_object()) {
      fail("header is a JSON " + json_type(header) + ", expected an object mapping tensor names to entries");
    }

    std::vector<Entry> entries;
    entries.reserve(header.size());
    for (const auto& [name, value] : header.items()) {
      if (name == "__metadata__") {
        read_metadata(value);
        continue;
      }
      entries.push_back(read_entry(name, value));
    }

    // The entries must tile the data section: sorted by offset, each starts
    // where the previous ended. Zero-byte tensors sort before a tensor at the
    // same offset, so they never look like an overlap.
    std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
      return std::tie(a.begin, a.end, a.view.name) < std::tie(b.begin, b.end, b.view.name);
    });
    uint64_t covered = 0;  // end of the bytes accounted for so far
    const Entry* previous = nullptr;
    for (const Entry& e : entries) {
      if (e.begin < covered) {
        fail("tensors '" + previous->view.name + "' (bytes " + range_string(previous->begin, previous->end) +
             ") and '" + e.view.name + "' (bytes " + range_string(e.begin, e.end) + ") overlap in the data section");
      }
      if (e.begin > covered) {
        fail("hole in the data section: bytes " + range_string(covered, e.begin) + " belong to no tensor (" +
             (previous ? "after '" + previous->view.name + "', " : std::string("at the start, ")) + "before '" +
             e.view.name + "'); the format requires tensor data to be contiguous");
      }
      covered = e.end;
      previous = &e;
    }
    if (covered != data_bytes_) {
      fail("the data section has " + std::to_string(data_bytes_) + " bytes but the tensors cover only the first " +
           std::to_string(covered) + "; the format requires tensor data to be contiguous");
    }

    out_.tensors_.reserve(entries.size());
    for (Entry& e : entries) {
      out_.index_.emplace(e.view.name, out_.tensors_.size());
      out_.tensors_.push_back(std::move(e.view));
    }
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw bad_file(out_.path_ + ": " + what); }

  void read_metadata(const Json& value) {
    if (!value.is_object()) fail("'__metadata__' is a JSON " + json_type(value) + ", expected an object of strings");
    for (const auto& [key, item] : value.items()) {
      if (!item.is_string()) {
        fail("'__metadata__' key '" + key + "' is a JSON " + json_type(item) + ", expected a string");
      }
      out_.metadata_.emplace(key, item.get<std::string>());
    }
  }

  // One header entry: {"dtype": "F32", "shape": [rows, cols], "data_offsets": [begin, end]}.
  Entry read_entry(const std::string& name, const Json& value) const {
    if (name.empty()) fail("a tensor has an empty name");
    const std::string tensor = "tensor '" + name + "'";
    if (!value.is_object()) {
      fail(tensor + " entry is a JSON " + json_type(value) + ", expected an object with dtype, shape and data_offsets");
    }
    const Json& dtype_json = field(value, name, "dtype");
    const Json& shape_json = field(value, name, "shape");
    const Json& offsets_json = field(value, name, "data_offsets");

    if (!dtype_json.is_string()) fail(tensor + " dtype is a JSON " + json_type(dtype_json) + ", expected a string");
    const std::string dtype_text = dtype_json.get<std::string>();
    const std::optional<DType> type = safetensors_dtype(dtype_text);
    if (!type) {
      fail(tensor + " has dtype \"" + dtype_text + "\", which neuronlens cannot read; supported: F32, F16, BF16");
    }

    if (!shape_json.is_array()) fail(tensor + " shape is a JSON " + json_type(shape_json) + ", expected an array");
    std::vector<int64_t> shape;
    shape.reserve(shape_json.size());
    int64_t elements = 1;  // a 0-dim tensor (shape []) is a scalar
    for (size_t d = 0; d < shape_json.size(); ++d) {
      const Json& dim = shape_json[d];
      if (!dim.is_number_unsigned() || dim.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(tensor + " shape dimension " + std::to_string(d) + " is " + json_excerpt(dim) + " (a " + json_type(dim) +
             "), expected a non-negative integer");
      }
      const auto size = static_cast<int64_t>(dim.get<uint64_t>());
      shape.push_back(size);
      if (__builtin_mul_overflow(elements, size, &elements)) fail(tensor + " shape " + json_excerpt(shape_json) + " has too many elements");
    }

    if (!offsets_json.is_array() || offsets_json.size() != 2) {
      fail(tensor + " data_offsets is " + json_excerpt(offsets_json) + ", expected an array [begin, end]");
    }
    for (const Json& offset : offsets_json) {
      if (!offset.is_number_unsigned() ||
          offset.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        fail(tensor + " data_offsets " + json_excerpt(offsets_json) + " holds " + json_excerpt(offset) + " (a " +
             json_type(offset) + "), expected non-negative integers");
      }
    }
    const auto begin = offsets_json[0].get<uint64_t>();
    const auto end = offsets_json[1].get<uint64_t>();
    if (begin > end) fail(tensor + " data_offsets " + range_string(begin, end) + " end before they begin");
    if (end > data_bytes_) {
      fail(tensor + " data_offsets " + range_string(begin, end) + " end past the data section, which has only " +
           std::to_string(data_bytes_) + " bytes (file truncated?)");
    }
    int64_t expected_bytes = 0;
    if (__builtin_mul_overflow(elements, dtype_traits(*type).block_bytes, &expected_bytes)) {
      fail(tensor + " is too large");
    }
    if (static_cast<uint64_t>(expected_bytes) != end - begin) {
      fail(tensor + " has shape " + json_excerpt(shape_json) + " of " + dtype_text + ", which needs " +
           std::to_string(expected_bytes) + " bytes, but data_offsets " + range_string(begin, end) + " hold " +
           std::to_string(end - begin));
    }

    Entry entry{{}, begin, end};
    entry.view.name = name;
    entry.view.type = *type;
    entry.view.shape = std::move(shape);
    entry.view.data = data_ + begin;
    entry.view.nbytes = expected_bytes;
    return entry;
  }

  const Json& field(const Json& entry, const std::string& name, const char* key) const {
    auto it = entry.find(key);
    if (it == entry.end()) {
      fail("tensor '" + name + "' entry has no \"" + key + "\" (expected dtype, shape and data_offsets)");
    }
    return *it;
  }

  SafetensorsFile& out_;
  const uint8_t* data_ = nullptr;  // start of the data section
  uint64_t data_bytes_ = 0;
};

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  SafetensorsFile file;
  file.path_ = path;
  file.file_ = MappedFile::open(path);
  SafetensorsParser(file).parse();
  return file;
}

const TensorView* SafetensorsFile::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  return it == index_.end() ? nullptr : &tensors_[it->second];
}

namespace {

// model.safetensors.index.json: {"metadata": {...}, "weight_map": {tensor: shard file}}.
// Returns the weight map after checking its types and that every shard name is
// a plain file name: the index is as hostile as the weights, and a name like
// "../x" would read outside the model folder.
std::map<std::string, std::string> read_weight_map(const std::string& index_path) {
  auto fail = [&](const std::string& what) { fail_in(index_path, what); };
  const std::shared_ptr<MappedFile> file = MappedFile::open(index_path);
  if (file->size() > kMaxIndexBytes) {
    fail("is " + std::to_string(file->size()) + " bytes, more than the limit of " + std::to_string(kMaxIndexBytes));
  }
  const std::string_view text(reinterpret_cast<const char*>(file->data()), static_cast<size_t>(file->size()));
  const Json index = parse_json_strict(text, index_path, [](const std::string& key, size_t depth) {
    return depth == 2 ? "tensor '" + key + "' is listed twice in the weight map"
                      : "key '" + key + "' appears twice in the same object";
  });
  if (!index.is_object()) fail("is a JSON " + json_type(index) + ", expected an object with a \"weight_map\"");
  auto weight_map = index.find("weight_map");
  if (weight_map == index.end()) fail("has no \"weight_map\"");
  if (!weight_map->is_object()) {
    fail("\"weight_map\" is a JSON " + json_type(*weight_map) + ", expected an object of tensor name -> shard file");
  }
  std::map<std::string, std::string> shard_of;
  for (const auto& [tensor, shard_json] : weight_map->items()) {
    if (!shard_json.is_string()) {
      fail("weight_map entry of tensor '" + tensor + "' is a JSON " + json_type(shard_json) +
           ", expected a shard file name");
    }
    const std::string shard = shard_json.get<std::string>();
    if (shard.empty() || shard.find('/') != std::string::npos || shard.find('\\') != std::string::npos ||
        shard.find("..") != std::string::npos || shard.find('\0') != std::string::npos) {
      fail("weight_map names shard '" + shard + "' for tensor '" + tensor +
           "'; expected a plain file name inside the model folder (no '/', '\\' or '..')");
    }
    shard_of.emplace(tensor, shard);
  }
  return shard_of;
}

}  // namespace

SafetensorsCheckpoint SafetensorsCheckpoint::open_folder(const std::string& folder) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(folder, ec)) throw bad_file(folder + ": not a folder (expected a Hugging Face model folder)");
  const fs::path dir(folder);

  SafetensorsCheckpoint checkpoint;
  const fs::path single = dir / kSingleFileName;
  const fs::path index_path = dir / kIndexFileName;
  std::map<std::string, std::string> shard_of;  // tensor -> shard, from the index
  if (fs::exists(single, ec)) {
    checkpoint.files_.push_back(SafetensorsFile::open(single.string()));
  } else if (fs::exists(index_path, ec)) {
    shard_of = read_weight_map(index_path.string());
    std::map<std::string, std::string> first_tensor_of;  // shard -> a tensor naming it, for messages
    for (const auto& [tensor, shard] : shard_of) first_tensor_of.emplace(shard, tensor);
    for (const auto& [shard, tensor] : first_tensor_of) {
      const fs::path shard_path = dir / shard;
      if (!fs::exists(shard_path, ec)) {
        throw bad_file(index_path.string() + ": shard '" + shard + "' (holding tensor '" + tensor +
                       "') is missing from the folder");
      }
      checkpoint.files_.push_back(SafetensorsFile::open(shard_path.string()));
    }
  } else {
    throw bad_file(folder + ": has neither " + kSingleFileName + " nor " + kIndexFileName);
  }

  for (size_t f = 0; f < checkpoint.files_.size(); ++f) {
    const std::vector<TensorView>& tensors = checkpoint.files_[f].tensors();
    for (size_t t = 0; t < tensors.size(); ++t) {
      auto [it, inserted] = checkpoint.index_.emplace(tensors[t].name, TensorLocation{f, t});
      if (!inserted) {
        throw bad_file(folder + ": tensor '" + tensors[t].name + "' is in two shards, " +
                       checkpoint.files_[it->second.file].path() + " and " + checkpoint.files_[f].path());
      }
    }
  }

  for (const auto& [tensor, shard] : shard_of) {
    auto it = checkpoint.index_.find(tensor);
    if (it == checkpoint.index_.end()) {
      throw bad_file(index_path.string() + ": tensor '" + tensor + "' is mapped to shard '" + shard +
                     "', but that shard has no such tensor");
    }
    const std::string found_in = fs::path(checkpoint.files_[it->second.file].path()).filename().string();
    if (found_in != shard) {
      throw bad_file(index_path.string() + ": tensor '" + tensor + "' is mapped to shard '" + shard +
                     "', but it is in shard '" + found_in + "'");
    }
  }
  return checkpoint;
}

const TensorView* SafetensorsCheckpoint::find_tensor(const std::string& name) const {
  auto it = index_.find(name);
  if (it == index_.end()) return nullptr;
  return &files_[it->second.file].tensors()[it->second.tensor];
}

std::vector<const TensorView*> SafetensorsCheckpoint::tensors() const {
  std::vector<const TensorView*> all;
  for (const SafetensorsFile& file : files_) {
    for (const TensorView& tensor : file.tensors()) all.push_back(&tensor);
  }
  return all;
}

}  // namespace neuronlens

// Parses and validates a GGUF file (layout: include/neuronlens/gguf.h).
// Every count, length, offset and type read from the file is checked against
// the bytes that remain before it is used, so a hostile file cannot cause an
// out-of-bounds read; and what the metadata allocates is charged, before it is
// allocated, to a budget of kBudgetPerFileByte x the file size + kBudgetBase,
// so a hostile file cannot claim memory out of proportion to its size.
#include <algorithm>
#include <cstring>
#include <limits>

#include "io/mapped_file.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"

namespace neuronlens {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" read as little-endian u32
constexpr int kMaxArrayNesting = 4;
constexpr uint32_t kMaxDims = 4;
constexpr int64_t kMaxNameLength = 1 << 16;
// The metadata's memory budget. Numbers cost nothing (they stay in the
// mapping), a string its length plus a view (16 bytes for at least 8 in the
// file), a nested array sizeof(GgufArray) for at least 12 bytes in the file: only
// arrays of arrays, which no known writer produces, and absurdly many keys can
// reach the bound.
constexpr int64_t kBudgetPerFileByte = 4;
constexpr int64_t kBudgetBase = 1 << 20;

// Bytes one number or bool of `type` occupies (0 for strings and arrays).
size_t packed_width(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::BOOL: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    case GgufValueType::STRING: case GgufValueType::ARRAY: return 0;
  }
  return 0;
}

template <typename T>
T load(const uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// Smallest number of bytes one value of `type` occupies in the file; used to
// reject counts that could not fit in the rest of the file.
int64_t min_encoded_size(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8: case GgufValueType::I8: case GgufValueType::BOOL: return 1;
    case GgufValueType::U16: case GgufValueType::I16: return 2;
    case GgufValueType::U32: case GgufValueType::I32: case GgufValueType::F32: return 4;
    case GgufValueType::U64: case GgufValueType::I64: case GgufValueType::F64: return 8;
    case GgufValueType::STRING: return 8;
    case GgufValueType::ARRAY: return 12;
  }
  return 1;
}

bool is_known_value_type(uint32_t id) { return id <= static_cast<uint32_t>(GgufValueType::F64); }

}  // namespace

std::string_view gguf_value_type_name(GgufValueType type) {
  switch (type) {
    case GgufValueType::U8: return "uint8";
    case GgufValueType::I8: return "int8";
    case GgufValueType::U16: return "uint16";
    case GgufValueType::I16: return "int16";
    case GgufValueType::U32: return "uint32";
    case GgufValueType::I32: return "int32";
    case GgufValueType::F32: return "float32";
    case GgufValueType::BOOL: return "bool";
    case GgufValueType::STRING: return "string";
    case GgufValueType::ARRAY: return "array";
    case GgufValueType::U64: return "uint64";
    case GgufValueType::I64: return "int64";
    case GgufValueType::F64: return "float64";
  }
  return "unknown";
}

bool GgufValue::is_integer() const {
  return std::holds_alternative<uint64_t>(value) || std::holds_alternative<int64_t>(value);
}

GgufValue GgufArray::at(size_t i) const {
  GgufValue v;
  v.type = element_type_;
  const uint8_t* p = numbers_ + i * packed_width(element_type_);
  switch (element_type_) {
    case GgufValueType::U8: v.value = uint64_t{load<uint8_t>(p)}; break;
    case GgufValueType::I8: v.value = int64_t{load<int8_t>(p)}; break;
    case GgufValueType::U16: v.value = uint64_t{load<uint16_t>(p)}; break;
    case GgufValueType::I16: v.value = int64_t{load<int16_t>(p)}; break;
    case GgufValueType::U32: v.value = uint64_t{load<uint32_t>(p)}; break;
    case GgufValueType::I32: v.value = int64_t{load<int32_t>(p)}; break;
    case GgufValueType::U64: v.value = load<uint64_t>(p); break;
    case GgufValueType::I64: v.value = load<int64_t>(p); break;
    case GgufValueType::F32: v.value = double{load<float>(p)}; break;
    case GgufValueType::F64: v.value = load<double>(p); break;
    case GgufValueType::BOOL: v.value = *p != 0; break;  // checked to be 0 or 1 when read
    case GgufValueType::STRING: v.value = std::string(strings_[i]); break;
    case GgufValueType::ARRAY: v.value = arrays_[i]; break;
  }
  return v;
}

// Reads the header, metadata and tensor infos with a bounds-checked cursor.
class GgufParser {
 public:
  explicit GgufParser(GgufFile& out)
      : out_(out), data_(out.file_->data()), size_(out.file_->size()),
        budget_left_(kBudgetPerFileByte * size_ + kBudgetBase), budget_(budget_left_) {}

  void parse() {
    if (size_ < 4) fail("file is " + std::to_string(size_) + " bytes, too short for a GGUF header");
    uint32_t magic = read_u32("magic");
    if (magic != kGgufMagic) {
      char found[5] = {0};
      std::memcpy(found, &magic, 4);
      for (char& c : found) if (c != 0 && (c < 32 || c > 126)) c = '?';
      fail("not a GGUF file: magic is \"" + std::string(found, 4) + "\", expected \"GGUF\"");
    }
    out_.version_ = read_u32("version");
    if (out_.version_ != 2 && out_.version_ != 3) {
      fail("GGUF version " + std::to_string(out_.version_) + " is not supported (expected 2 or 3)");
    }
    uint64_t tensor_count = read_u64("tensor count");
    uint64_t kv_count = read_u64("metadata count");
    // A key-value pair takes at least 8 (key length) + 4 (type) + 1 bytes; a
    // tensor info at least 8 + 4 + 8 + 4 + 8.
    check_count(kv_count, 13, "metadata count");
    check_count(tensor_count, 32, "tensor count");

    out_.keys_.reserve(kv_count);
    out_.key_spans_.reserve(kv_count);
    for (uint64_t i = 0; i < kv_count; ++i) {
      const auto entry_start = static_cast<int64_t>(pos_);
      std::string key = read_string("metadata key #" + std::to_string(i));
      if (key.empty()) fail("metadata key #" + std::to_string(i) + " is empty");
      if (out_.metadata_.count(key)) fail("duplicate metadata key '" + key + "'");
      // The key is held twice (in keys_ and the map), with a hash-map node.
      charge(2 * static_cast<int64_t>(sizeof(std::string) + key.size()) + static_cast<int64_t>(sizeof(GgufValue)) + 32,
             key);
      uint32_t type_id = read_u32("type of metadata key '" + key + "'");
      GgufValue value = read_value(type_id, key, 0);
      out_.keys_.push_back(key);
      out_.key_spans_.push_back({entry_start, static_cast<int64_t>(pos_)});
      out_.metadata_.emplace(std::move(key), std::move(value));
    }

    if (const GgufValue* alignment = out_.find("general.alignment")) {
      if (alignment->type != GgufValueType::U32) {
        fail("metadata key 'general.alignment' has type " + std::string(gguf_value_type_name(alignment->type)) +
             ", expected uint32");
      }
      uint64_t a = std::get<uint64_t>(alignment->value);
      if (a == 0 || (a & (a - 1)) != 0) {
        fail("metadata key 'general.alignment' is " + std::to_string(a) + ", expected a power of two");
      }
      out_.alignment_ = a;
    }

    struct RawTensor {
      std::string name;
      std::vector<int64_t> ne;
      uint32_t type_id;
      uint64_t offset;
    };
    std::vector<RawTensor> raw;
    raw.reserve(tensor_count);
    for (uint64_t i = 0; i < tensor_count; ++i) {
      RawTensor t;
      t.name = read_string("name of tensor #" + std::to_string(i));
      if (t.name.empty()) fail("tensor #" + std::to_string(i) + " has an empty name");
      if (out_.tensor_index_.count(t.name)) fail("duplicate tensor name '" + t.name + "'");
      uint32_t n_dims = read_u32("dimension count of tensor '" + t.name + "'");
      if (n_dims == 0 || n_dims > kMaxDims) {
        fail("tensor '" + t.name + "' has " + std::to_string(n_dims) + " dimensions, expected 1 to " +
             std::to_string(kMaxDims));
      }
      for (uint32_t d = 0; d < n_dims; ++d) {
        uint64_t ne = read_u64("dimension of tensor '" + t.name + "'");
        if (ne == 0 || ne > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
          fail("tensor '" + t.name + "' dimension " + std::to_string(d) + " is " + std::to_string(ne) +
               ", expected a positive size");
        }
        t.ne.push_back(static_cast<int64_t>(ne));
      }
      t.type_id = read_u32("type of tensor '" + t.name + "'");
      t.offset = read_u64("data offset of tensor '" + t.name + "'");
      out_.tensor_index_.emplace(t.name, i);
      raw.push_back(std::move(t));
    }

    // Tensor data starts at the next multiple of the alignment. A file with no
    // tensors may end before that padding (llama.cpp's vocab-only files do).
    uint64_t data_start = align_up(static_cast<uint64_t>(pos_), out_.alignment_);
    if (raw.empty()) data_start = std::min(data_start, static_cast<uint64_t>(size_));
    if (data_start > static_cast<uint64_t>(size_)) {
      fail("tensor data would start at byte " + std::to_string(data_start) + ", past the end of the file (" +
           std::to_string(size_) + " bytes)");
    }
    out_.data_offset_ = static_cast<int64_t>(data_start);
    const uint64_t data_bytes = static_cast<uint64_t>(size_) - data_start;

    out_.tensors_.reserve(raw.size());
    for (const RawTensor& t : raw) out_.tensors_.push_back(make_view(t.name, t.ne, t.type_id, t.offset, data_bytes));
    check_no_overlap();
  }

 private:
  [[noreturn]] void fail(const std::string& what) const { throw bad_file(out_.path_ + ": " + what); }

  static uint64_t align_up(uint64_t x, uint64_t a) { return (x + a - 1) / a * a; }

  int64_t remaining() const { return size_ - pos_; }

  void need(int64_t bytes, const std::string& what) const {
    if (bytes > remaining()) {
      fail("truncated while reading " + what + " at byte " + std::to_string(pos_) + ": needs " +
           std::to_string(bytes) + " bytes, " + std::to_string(remaining()) + " left");
    }
  }

  template <typename T>
  T read_scalar(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += static_cast<int64_t>(sizeof(T));
    return v;
  }
  uint32_t read_u32(const std::string& what) { return read_scalar<uint32_t>(what); }
  uint64_t read_u64(const std::string& what) { return read_scalar<uint64_t>(what); }

  void check_count(uint64_t count, int64_t min_bytes_each, const std::string& what) const {
    if (count > static_cast<uint64_t>(remaining() / min_bytes_each)) {
      fail(what + " is " + std::to_string(count) + ", more than the " + std::to_string(remaining()) +
           " remaining bytes can hold");
    }
  }

  // Takes `bytes` from the metadata budget before they are allocated.
  void charge(int64_t bytes, const std::string& key) {
    if (bytes > budget_left_) {
      fail("metadata key '" + key + "' needs " + std::to_string(bytes) + " more bytes of memory, past the " +
           std::to_string(budget_) + " bytes allowed for the metadata of a file of " + std::to_string(size_) +
           " bytes (" + std::to_string(kBudgetPerFileByte) + " x its size + 1 MiB)");
    }
    budget_left_ -= bytes;
  }

  std::string_view read_string_view(const std::string& what) {
    uint64_t length = read_u64("length of " + what);
    if (length > static_cast<uint64_t>(remaining())) {
      fail(what + " has length " + std::to_string(length) + ", but only " + std::to_string(remaining()) +
           " bytes remain in the file");
    }
    std::string_view s(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(length));
    pos_ += static_cast<int64_t>(length);
    return s;
  }
  std::string read_string(const std::string& what) { return std::string(read_string_view(what)); }

  GgufValue read_value(uint32_t type_id, const std::string& key, int depth) {
    if (!is_known_value_type(type_id)) {
      fail("metadata key '" + key + "' has unknown value type " + std::to_string(type_id) + " (expected 0 to 12)");
    }
    GgufValue v;
    v.type = static_cast<GgufValueType>(type_id);
    const std::string what = "value of metadata key '" + key + "'";
    switch (v.type) {
      case GgufValueType::U8: v.value = uint64_t{read_scalar<uint8_t>(what)}; break;
      case GgufValueType::I8: v.value = int64_t{read_scalar<int8_t>(what)}; break;
      case GgufValueType::U16: v.value = uint64_t{read_scalar<uint16_t>(what)}; break;
      case GgufValueType::I16: v.value = int64_t{read_scalar<int16_t>(what)}; break;
      case GgufValueType::U32: v.value = uint64_t{read_scalar<uint32_t>(what)}; break;
      case GgufValueType::I32: v.value = int64_t{read_scalar<int32_t>(what)}; break;
      case GgufValueType::U64: v.value = read_scalar<uint64_t>(what); break;
      case GgufValueType::I64: v.value = read_scalar<int64_t>(what); break;
      case GgufValueType::F32: v.value = double{read_scalar<float>(what)}; break;
      case GgufValueType::F64: v.value = read_scalar<double>(what); break;
      case GgufValueType::BOOL: {
        uint8_t b = read_scalar<uint8_t>(what);
        if (b > 1) fail("metadata key '" + key + "' is a bool with byte value " + std::to_string(b) + ", expected 0 or 1");
        v.value = b != 0;
        break;
      }
      case GgufValueType::STRING: {
        const std::string_view text = read_string_view(what);
        charge(static_cast<int64_t>(text.size()), key);
        v.value = std::string(text);
        break;
      }
      case GgufValueType::ARRAY: v.value = read_array(key, depth); break;
    }
    return v;
  }

  // An array value at nesting level `depth` (0: the key's own value).
  GgufArray read_array(const std::string& key, int depth) {
    if (depth >= kMaxArrayNesting) {
      fail("metadata key '" + key + "' nests arrays deeper than " + std::to_string(kMaxArrayNesting) + " levels");
    }
    uint32_t element_id = read_u32("element type of metadata key '" + key + "'");
    if (!is_known_value_type(element_id)) {
      fail("metadata key '" + key + "' is an array of unknown value type " + std::to_string(element_id) +
           " (expected 0 to 12)");
    }
    GgufArray a;
    a.element_type_ = static_cast<GgufValueType>(element_id);
    uint64_t count = read_u64("element count of metadata key '" + key + "'");
    check_count(count, min_encoded_size(a.element_type_), "element count of metadata key '" + key + "'");
    a.size_ = static_cast<size_t>(count);
    const int64_t n = static_cast<int64_t>(count);
    switch (a.element_type_) {
      case GgufValueType::STRING:
        charge(n * static_cast<int64_t>(sizeof(std::string_view)), key);
        a.strings_.reserve(a.size_);
        {
          const std::string what = "value of metadata key '" + key + "'";
          for (uint64_t i = 0; i < count; ++i) a.strings_.push_back(read_string_view(what));
        }
        break;
      case GgufValueType::ARRAY:
        charge(n * static_cast<int64_t>(sizeof(GgufArray)), key);
        a.arrays_.reserve(a.size_);
        for (uint64_t i = 0; i < count; ++i) a.arrays_.push_back(read_array(key, depth + 1));
        break;
      default: {
        const int64_t bytes = n * static_cast<int64_t>(packed_width(a.element_type_));
        need(bytes, "elements of metadata key '" + key + "'");
        a.numbers_ = data_ + pos_;
        if (a.element_type_ == GgufValueType::BOOL) {
          const uint8_t* bad = std::find_if(a.numbers_, a.numbers_ + n, [](uint8_t b) { return b > 1; });
          if (bad != a.numbers_ + n) {
            fail("metadata key '" + key + "' is an array of bool with byte value " + std::to_string(*bad) +
                 " at index " + std::to_string(bad - a.numbers_) + ", expected 0 or 1");
          }
        }
        pos_ += bytes;
        break;
      }
    }
    return a;
  }

  TensorView make_view(const std::string& name, const std::vector<int64_t>& ne, uint32_t type_id, uint64_t offset,
                       uint64_t data_bytes) const {
    std::optional<DType> type = dtype_from_gguf_id(type_id);
    if (!type) {
      fail("tensor '" + name + "' has type " + std::string(gguf_type_id_name(type_id)) + " (id " +
           std::to_string(type_id) + "), which neuronlens cannot read; supported: F32, F16, BF16, Q4_0, Q4_1, "
           "Q5_0, Q5_1, Q8_0, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K");
    }
    const DTypeTraits& traits = dtype_traits(*type);
    if (ne[0] % traits.block_elements != 0) {
      fail("tensor '" + name + "' has rows of " + std::to_string(ne[0]) + " values, not a multiple of the " +
           std::string(traits.name) + " block size " + std::to_string(traits.block_elements));
    }
    int64_t elements = 1;
    for (int64_t n : ne) {
      if (__builtin_mul_overflow(elements, n, &elements)) fail("tensor '" + name + "' has too many elements");
    }
    int64_t nbytes = 0;
    if (__builtin_mul_overflow(elements / traits.block_elements, traits.block_bytes, &nbytes)) {
      fail("tensor '" + name + "' is too large");
    }
    if (offset % out_.alignment_ != 0) {
      fail("tensor '" + name + "' data offset " + std::to_string(offset) + " is not a multiple of the alignment " +
           std::to_string(out_.alignment_));
    }
    if (offset > data_bytes || static_cast<uint64_t>(nbytes) > data_bytes - offset) {
      fail("tensor '" + name + "' needs bytes " + std::to_string(offset) + " to " +
           std::to_string(offset + static_cast<uint64_t>(nbytes)) + " of the data section, which has only " +
           std::to_string(data_bytes) + " bytes (file truncated?)");
    }
    TensorView view;
    view.name = name;
    view.type = *type;
    view.shape.assign(ne.rbegin(), ne.rend());
    view.data = data_ + out_.data_offset_ + static_cast<int64_t>(offset);
    view.nbytes = nbytes;
    return view;
  }

  void check_no_overlap() const {
    std::vector<const TensorView*> by_start;
    for (const TensorView& t : out_.tensors_) by_start.push_back(&t);
    std::sort(by_start.begin(), by_start.end(), [](auto* a, auto* b) { return a->data < b->data; });
    for (size_t i = 1; i < by_start.size(); ++i) {
      const TensorView* prev = by_start[i - 1];
      if (prev->data + prev->nbytes > by_start[i]->data) {
        fail("tensors '" + prev->name + "' and '" + by_start[i]->name + "' overlap in the data section");
      }
    }
  }

  GgufFile& out_;
  const uint8_t* data_;
  int64_t size_;
  int64_t pos_ = 0;
  int64_t budget_left_;  // bytes of the metadata budget not yet charged
  int64_t budget_;
};

GgufFile GgufFile::open(const std::string& path) {
  GgufFile file;
  file.path_ = path;
  file.file_ = MappedFile::open(path);
  GgufParser(file).parse();
  return file;
}

int64_t GgufFile::file_size() const { return file_->size(); }

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_.find(key);
  return it == metadata_.end() ? nullptr : &it->second;
}

const TensorView* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace neuronlens

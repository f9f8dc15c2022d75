// A GGUF copy with replaced tensors (layout: include/neuronlens/gguf.h).
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <memory>
#include <set>
#include <system_error>

#include "io/mapped_file.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf_writer.h"

namespace neuronlens {
namespace {

constexpr uint32_t kGgufMagic = 0x46554747;  // "GGUF" as a little-endian u32

uint64_t align_up(uint64_t offset, uint64_t alignment) { return (offset + alignment - 1) / alignment * alignment; }

// Buffered writes to one file that throw Error naming `shown` (the path the
// user asked for, not the temporary one) on any failure.
class FileSink {
 public:
  FileSink(const std::string& path, const std::string& shown)
      : path_(shown), file_(std::fopen(path.c_str(), "wb")) {
    if (file_ == nullptr) fail();
  }
  ~FileSink() {
    if (file_ != nullptr) std::fclose(file_);
  }
  FileSink(const FileSink&) = delete;
  FileSink& operator=(const FileSink&) = delete;

  void bytes(const void* data, size_t n) {
    if (n != 0 && std::fwrite(data, 1, n, file_) != n) fail();
    written_ += n;
  }
  template <typename T>
  void value(T v) { bytes(&v, sizeof v); }
  void string(const std::string& s) {
    value<uint64_t>(s.size());
    bytes(s.data(), s.size());
  }
  void zeros_to(uint64_t offset) {
    static const uint8_t kZeros[64] = {};
    while (written_ < offset) bytes(kZeros, std::min<uint64_t>(sizeof kZeros, offset - written_));
  }
  uint64_t written() const { return written_; }
  void close() {
    const int rc = std::fclose(file_);
    file_ = nullptr;
    if (rc != 0) fail();
  }

 private:
  [[noreturn]] void fail() const { throw bad_input("cannot write '" + path_ + "': " + std::strerror(errno)); }
  std::string path_;
  std::FILE* file_;
  uint64_t written_ = 0;
};

// The data a tensor is written with: the replacement's, or the source's bytes.
struct TensorOut {
  const TensorView* view;
  DType type;
  const uint8_t* data;
  uint64_t nbytes;
};

std::vector<TensorOut> tensors_to_write(const GgufFile& source, const GgufCopyChanges& changes) {
  std::vector<TensorOut> out;
  for (const TensorView& t : source.tensors()) {
    auto it = changes.tensors.find(t.name);
    if (it == changes.tensors.end()) {
      out.push_back({&t, t.type, t.data, static_cast<uint64_t>(t.nbytes)});
      continue;
    }
    const GgufTensorData& d = it->second;
    const int64_t block = dtype_traits(d.type).block_elements;
    if (t.row_length() % block != 0) {
      throw bad_input("tensor '" + t.name + "' has rows of " + std::to_string(t.row_length()) + ", not whole " +
                      std::string(dtype_name(d.type)) + " blocks");
    }
    if (static_cast<int64_t>(d.bytes.size()) != dtype_bytes_for(d.type, t.elements())) {
      throw bad_input("new data of tensor '" + t.name + "' is " + std::to_string(d.bytes.size()) + " bytes; " +
                      std::to_string(t.elements()) + " " + std::string(dtype_name(d.type)) + " values take " +
                      std::to_string(dtype_bytes_for(d.type, t.elements())));
    }
    out.push_back({&t, d.type, d.bytes.data(), d.bytes.size()});
  }
  for (const auto& [name, data] : changes.tensors) {
    if (source.find_tensor(name) == nullptr) throw bad_input("tensor '" + name + "' is not in " + source.path());
  }
  return out;
}

void write_string_entry(FileSink& sink, const std::string& key, const std::string& value) {
  sink.string(key);
  sink.value<uint32_t>(static_cast<uint32_t>(GgufValueType::STRING));
  sink.string(value);
}

void write_file(const GgufFile& source, const GgufCopyChanges& changes, const std::vector<TensorOut>& tensors,
                const std::string& path, const std::string& shown) {
  const uint8_t* file = source.mapping()->data();
  std::map<std::string, const std::string*> new_strings;
  for (const auto& [key, value] : changes.strings) new_strings[key] = &value;
  size_t added = 0;
  for (const auto& [key, value] : new_strings) added += source.has(key) ? 0 : 1;

  FileSink sink(path, shown);
  sink.value<uint32_t>(kGgufMagic);
  sink.value<uint32_t>(source.version());
  sink.value<uint64_t>(tensors.size());
  sink.value<uint64_t>(source.keys().size() + added);
  for (size_t i = 0; i < source.keys().size(); ++i) {
    auto replaced = new_strings.find(source.keys()[i]);
    if (replaced != new_strings.end()) {
      write_string_entry(sink, replaced->first, *replaced->second);
      continue;
    }
    const auto [first, end] = source.key_span(i);
    sink.bytes(file + first, static_cast<size_t>(end - first));
  }
  for (const auto& [key, value] : new_strings) {
    if (!source.has(key)) write_string_entry(sink, key, *value);
  }

  const uint64_t alignment = source.alignment();
  uint64_t offset = 0;
  for (const TensorOut& t : tensors) {
    sink.string(t.view->name);
    sink.value<uint32_t>(static_cast<uint32_t>(t.view->shape.size()));
    // GGUF lists dimensions innermost first.
    for (auto d = t.view->shape.rbegin(); d != t.view->shape.rend(); ++d) sink.value<uint64_t>(static_cast<uint64_t>(*d));
    sink.value<uint32_t>(static_cast<uint32_t>(t.type));
    sink.value<uint64_t>(offset);
    offset = align_up(offset + t.nbytes, alignment);
  }
  const uint64_t data_start = align_up(sink.written(), alignment);
  sink.zeros_to(data_start);
  for (const TensorOut& t : tensors) {
    sink.zeros_to(align_up(sink.written(), alignment));
    sink.bytes(t.data, t.nbytes);
  }
  sink.close();
}

}  // namespace

bool same_file(const std::string& a, const std::string& b) {
  std::error_code ec;
  if (std::filesystem::exists(a, ec) && std::filesystem::exists(b, ec)) {
    return std::filesystem::equivalent(a, b, ec);
  }
  return std::filesystem::weakly_canonical(a, ec) == std::filesystem::weakly_canonical(b, ec);
}

void write_gguf_copy(const GgufFile& source, const GgufCopyChanges& changes, const std::string& out_path) {
  if (same_file(out_path, source.path())) {
    throw bad_input("the output '" + out_path + "' is the model file itself; write the edit to another path");
  }
  const std::vector<TensorOut> tensors = tensors_to_write(source, changes);
  const std::string partial = out_path + ".partial-" + std::to_string(::getpid());
  try {
    write_file(source, changes, tensors, partial, out_path);
    std::error_code ec;
    std::filesystem::rename(partial, out_path, ec);
    if (ec) throw bad_input("cannot write '" + out_path + "': " + ec.message());
  } catch (...) {
    std::error_code ignored;
    std::filesystem::remove(partial, ignored);
    throw;
  }
}

}  // namespace neuronlens

// A read-only memory mapping of a whole file. Model weights are never copied:
// tensor views point into the mapping, which lives as long as any reader
// holding the shared_ptr.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

namespace neuronlens {

class MappedFile {
 public:
  // Maps `path` read-only; throws Error naming the path if it cannot be opened,
  // is not a regular file, or cannot be mapped. An empty file maps to size 0.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  int64_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  const uint8_t* data_ = nullptr;
  int64_t size_ = 0;
};

}  // namespace neuronlens

// SHA-256 (FIPS 180-4), for checking dequantised tensors and model files
// against digests computed by the Python reference tools. Whole blocks go
// through the SHA extensions where the CPU has them (sha256_blocks.h).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace neuronlens {

class Sha256 {
 public:
  Sha256();
  void update(const void* data, size_t size);
  // Digest of everything fed so far, as 64 lowercase hex digits. Does not
  // change the state, so more data can follow.
  std::string hex_digest() const;

 private:
  std::array<uint32_t, 8> state_;
  std::array<uint8_t, 64> pending_{};  // bytes of a not yet complete block
  size_t pending_size_ = 0;
  uint64_t total_bytes_ = 0;
};

// SHA-256 of a whole file, read in chunks; throws Error naming the path if it
// cannot be opened or read.
std::string sha256_file_hex(const std::string& path);

}  // namespace neuronlens

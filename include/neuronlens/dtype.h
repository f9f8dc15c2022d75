// Element types of model tensors, with the ids GGUF files use (ggml_type).
// Quantised types store `block_elements` values in `block_bytes` bytes; a row
// of a tensor is always a whole number of blocks.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

namespace neuronlens {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q4_1 = 3,
  Q5_0 = 6,
  Q5_1 = 7,
  Q8_0 = 8,
  Q2_K = 10,
  Q3_K = 11,
  Q4_K = 12,
  Q5_K = 13,
  Q6_K = 14,
  BF16 = 30,
};

struct DTypeTraits {
  std::string_view name;
  int64_t block_elements;  // values per block (1 for plain float types)
  int64_t block_bytes;     // bytes per block
};

// Traits of a supported type.
const DTypeTraits& dtype_traits(DType type);
std::string_view dtype_name(DType type);

// Maps a raw GGUF type id to a supported DType; nullopt for ids neuronlens
// cannot read (the caller turns that into an Error naming the tensor).
std::optional<DType> dtype_from_gguf_id(uint32_t id);

// Name of any ggml type id, supported or not, for error messages.
std::string_view gguf_type_id_name(uint32_t id);

// Bytes that `elements` values of `type` occupy; `elements` must be a
// multiple of the block size (checked by the readers before calling).
inline int64_t dtype_bytes_for(DType type, int64_t elements) {
  const DTypeTraits& t = dtype_traits(type);
  return elements / t.block_elements * t.block_bytes;
}

}  // namespace neuronlens

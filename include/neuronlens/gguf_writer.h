// Writing a GGUF file as a copy of another with some tensors' data replaced
// and some string metadata added: what `neuronlens edit` writes. Everything
// not replaced is copied byte for byte: every metadata entry as it was
// written, every other tensor's data; tensor offsets are laid out anew at the
// source's alignment.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "neuronlens/dtype.h"
#include "neuronlens/gguf.h"

namespace neuronlens {

// New data for one tensor of the source, same shape; the type may change
// (a K-quant tensor whose rows were edited is stored as F16).
struct GgufTensorData {
  DType type = DType::F32;
  std::vector<uint8_t> bytes;  // dtype_bytes_for(type, elements)
};

struct GgufCopyChanges {
  std::map<std::string, GgufTensorData> tensors;  // by tensor name
  // String metadata to set: a key the source has is replaced (written where
  // it was), a new one is added after the source's entries.
  std::vector<std::pair<std::string, std::string>> strings;
};

// Writes `source` with `changes` to `out_path`, through a temporary file in
// the same folder renamed over `out_path` at the end, so that a failed write
// leaves no half file. Throws Error (bad input) when `out_path` is the
// source file itself, a changed tensor is not in the source or its bytes do
// not fit its shape; Error naming the path when it cannot be written.
void write_gguf_copy(const GgufFile& source, const GgufCopyChanges& changes, const std::string& out_path);

// Whether two paths name the same file (the same inode when both exist, else
// the same normalised absolute path).
bool same_file(const std::string& a, const std::string& b);

}  // namespace neuronlens

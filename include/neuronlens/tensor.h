// A read-only view of one tensor inside a memory-mapped model file.
//
// Shapes are written the way PyTorch / Hugging Face write them, outermost
// first: a Linear weight is {rows, cols} = {out_features, in_features} and
// each row is contiguous. GGUF lists dimensions innermost first (ne[0] is the
// row length); the GGUF reader reverses them so both formats agree. So
// `ffn_up` / `up_proj` is {F, d}, `ffn_down` / `down_proj` is {d, F}, the
// token embedding and LM head are {V, d}.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "neuronlens/dtype.h"

namespace neuronlens {

struct TensorView {
  std::string name;             // name in the file it came from
  DType type = DType::F32;
  std::vector<int64_t> shape;   // outermost first; shape.back() is the row length
  const uint8_t* data = nullptr;  // first byte, inside the mapping
  int64_t nbytes = 0;

  int64_t elements() const;
  int64_t row_length() const { return shape.empty() ? 1 : shape.back(); }
  int64_t rows() const { return row_length() == 0 ? 0 : elements() / row_length(); }
  int64_t row_bytes() const { return dtype_bytes_for(type, row_length()); }
  std::string shape_string() const;  // e.g. "[1536, 576]"
};

// Dequantises rows [first_row, first_row + n_rows) of `tensor` into `out`
// (n_rows x row_length float32, row-major). Throws Error if the range is out of
// bounds. Output is bit-identical to gguf-py's `gguf.quants.dequantize`.
void dequantize_rows(const TensorView& tensor, int64_t first_row, int64_t n_rows, float* out);

// Dequantises `n` values of `type` stored at `src` (n a multiple of the block
// size) into `out`.
void dequantize(DType type, const uint8_t* src, int64_t n, float* out);

}  // namespace neuronlens

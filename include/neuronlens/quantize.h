// Float32 to a tensor type: the inverse of dequantize() (tensor.h), for the
// types whose quantiser is a plain rule (float types and the 32-value block
// types). Each is bit-identical to ggml's reference quantiser
// (quantize_row_*_ref) and to gguf-py's `gguf.quants.quantize`, so an edited
// row written by neuronlens reads back as llama.cpp would have written it.
// K-quants are not among them: their quantisers search per-block scales,
// and an edit stores such a tensor as F16 instead (model_edit.h).
#pragma once

#include <cstdint>

#include "neuronlens/dtype.h"

namespace neuronlens {

// Whether quantize() can write `type`: F32, F16, BF16, Q4_0, Q4_1, Q5_0,
// Q5_1, Q8_0.
bool can_quantize(DType type);

// Quantises n values (a multiple of the type's block size) into
// dtype_bytes_for(type, n) bytes at `out`. Throws Error for a type
// can_quantize() refuses or an n that is not whole blocks.
void quantize(DType type, const float* values, int64_t n, uint8_t* out);

}  // namespace neuronlens

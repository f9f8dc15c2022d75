// One weight matrix W [rows, cols] of a Session, read where it lies in the
// model's mapped file whenever a kernel can multiply its type there:
//   - K-quants (Q2_K..Q6_K): 8-bit integer products over activations
//     quantised 256 at a time, as llama.cpp does (backends/cpu/kquant.h);
//   - Q4_0, Q4_1, Q5_0, Q5_1, Q8_0: 8-bit integer products over activations
//     quantised 32 at a time, as llama.cpp does (backends/cpu/block_q8.h);
//   - F16, BF16: block kernels with float32 activations (block_matvec.h);
//   - F32: BLAS on the mapped floats.
// With float_activations, K-quants are instead dequantised a tile of rows at
// a time and multiplied in float32 (Tiles), and Q4_0..Q8_0 go through the
// float-activation block kernels (Blocks). Anything else, or everything
// with keep_blocks = false, is dequantised once into a float32 copy the
// matrix owns; fallback_reason() says why.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "neuronlens/dtype.h"
#include "neuronlens/tensor.h"

namespace neuronlens::runtime {

class WeightMatrix;

// One product y [n, W.rows] = x [n, W.cols] · W^T.
struct Product {
  const WeightMatrix* w;
  const float* x;
  float* y;
};

// Several products with the same n, e.g. q, k and v of one layer. Those that
// go through the quantised kernels share one parallel region: the threads
// meet once instead of once per product, which is what a generation step
// spends between its short products.
void multiply_together(std::initializer_list<Product> products, int64_t n);

// How a WeightMatrix multiplies.
enum class WeightKernel {
  Float32,  // BLAS over float32 (mapped in place, or an owned copy)
  Blocks,   // block_matvec.h: the file's blocks, float32 activations
  Int8Blocks,  // block_q8.h: the file's Q4_0..Q8_0 blocks, 8-bit activations per 32
  KQuant,   // kquant.h: the file's K-quant blocks, 8-bit activations
  Tiles,    // the file's blocks dequantised a tile of rows at a time, float32 activations
};

// What a WeightMatrix of a tensor will be, decided before anything is read.
struct WeightChoice {
  WeightKernel kernel = WeightKernel::Float32;
  bool in_place = true;         // false: dequantised into a float32 copy
  std::string fallback_reason;  // why a quantised type gets a copy ("" otherwise)
};

class WeightMatrix {
 public:
  static WeightChoice choose(const TensorView& tensor, bool keep_blocks, bool float_activations = false);

  WeightMatrix() = default;
  // A view of `tensor` (a 2-D matrix, or a vector as [1, n]), whose data must
  // outlive the matrix (the Session keeps the Model's mapping alive). With
  // `keep_blocks`, a type with a kernel here is read in place; otherwise the
  // matrix dequantises it into a float32 copy. Throws Error (from
  // dequantisation) on a bad tensor.
  WeightMatrix(const TensorView& tensor, bool keep_blocks, bool float_activations = false);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  WeightKernel kernel() const { return kernel_; }
  bool is_blocks() const { return kernel_ != WeightKernel::Float32; }
  // Bytes the products read, wherever they lie.
  int64_t bytes() const { return rows_ * row_bytes_; }
  // Of those, the bytes this matrix owns (a float32 copy); 0 when in place.
  int64_t copied_bytes() const { return static_cast<int64_t>(owned_.size()); }
  // Why a quantised tensor was copied to float32 ("" when it was not).
  const std::string& fallback_reason() const { return fallback_reason_; }

  // y [n, rows] = x [n, cols] · W^T.
  void multiply(const float* x, int64_t n, float* y) const;

  // Row r of W as float32 (the token embedding's lookup).
  void copy_row(int64_t r, float* out) const;

 private:
  friend void multiply_together(std::initializer_list<Product> products, int64_t n);
  const float* floats() const { return reinterpret_cast<const float*>(data_); }
  void multiply_blocks_by_tiles(const float* x, int64_t n, float* y) const;

  DType type_ = DType::F32;  // of the data multiplied (F32 after a fallback)
  WeightKernel kernel_ = WeightKernel::Float32;
  int64_t rows_ = 0, cols_ = 0, row_bytes_ = 0;
  const uint8_t* data_ = nullptr;  // [rows, row_bytes]: in the mapping, or owned_
  std::vector<uint8_t> owned_;     // the float32 copy, when there is one
  std::string fallback_reason_;
};

}  // namespace neuronlens::runtime

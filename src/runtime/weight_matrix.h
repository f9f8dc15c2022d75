// One weight matrix W [rows, cols] of a Session, held either as float32 or,
// for Q4_0 / Q4_1 / Q8_0 tensors on a CPU with the block kernels
// (backends/cpu/block_matvec.h), as the file's own blocks.
#pragma once

#include <cstdint>
#include <initializer_list>
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

// Several products with the same n, e.g. q, k and v of one layer. Where all
// go through the block kernels, they share one parallel region: the threads
// meet once instead of once per product, which is what a generation step
// spends between its short products.
void multiply_together(std::initializer_list<Product> products, int64_t n);

class WeightMatrix {
 public:
  WeightMatrix() = default;
  // Copies `tensor` (a 2-D matrix, or a vector as [1, n]): its blocks as
  // stored when `keep_blocks` and the type has a kernel here, else
  // dequantised to float32. Throws Error (from dequantisation) on a bad tensor.
  WeightMatrix(const TensorView& tensor, bool keep_blocks);

  int64_t rows() const { return rows_; }
  int64_t cols() const { return cols_; }
  bool is_blocks() const { return !blocks_.empty(); }
  int64_t bytes() const;

  // y [n, rows] = x [n, cols] · W^T. Float32: BLAS (GEMV for one row). Blocks:
  // the block kernels for up to a few rows; for more, each thread
  // dequantises a tile of W to float32 and multiplies it with BLAS, so the
  // prompt's products cost what the float32 ones cost plus one pass of
  // dequantisation.
  void multiply(const float* x, int64_t n, float* y) const;

  // Row r of W as float32 (the token embedding's lookup).
  void copy_row(int64_t r, float* out) const;

 private:
  friend void multiply_together(std::initializer_list<Product> products, int64_t n);
  // Rows [first, last) of the block path, with `sums` [n, cols / 32] the
  // block sums of x.
  void multiply_rows(const float* x, int64_t n, const float* sums, int64_t first, int64_t last, float* y) const;
  void multiply_blocks_by_tiles(const float* x, int64_t n, float* y) const;

  DType type_ = DType::F32;
  int64_t rows_ = 0, cols_ = 0, row_bytes_ = 0;
  std::vector<float> dense_;     // [rows, cols] when float32
  std::vector<uint8_t> blocks_;  // [rows, row_bytes] when blocks
};

}  // namespace neuronlens::runtime

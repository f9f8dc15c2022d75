#include "runtime/weight_matrix.h"

#include <cblas.h>
#include <omp.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "backends/cpu/block_matvec.h"
#include "backends/cpu/gemm.h"

namespace neuronlens::runtime {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

std::optional<cpu::BlockFormat> block_format(DType type) {
  switch (type) {
    case DType::Q4_0: return cpu::BlockFormat::Q4_0;
    case DType::Q4_1: return cpu::BlockFormat::Q4_1;
    case DType::Q8_0: return cpu::BlockFormat::Q8_0;
    default: return std::nullopt;
  }
}

// Below this many weights a product runs on one thread: waking the others
// costs more than they save.
constexpr int64_t kParallelWeights = int64_t{1} << 15;
// From this many rows of x on, the block path dequantises tiles of W and uses
// GEMM: one dequantisation per tile then costs less than re-reading the
// blocks once per row.
constexpr int64_t kTileFromRows = 8;

// Rows [first, last) of `rows` that thread `thread` of `threads` takes,
// in runs of 8 rows.
std::pair<int64_t, int64_t> thread_rows(int64_t rows, int thread, int threads) {
  const int64_t runs = (rows + 7) / 8;
  const int64_t first = runs * thread / threads * 8, last = runs * (thread + 1) / threads * 8;
  return {std::min(first, rows), std::min(last, rows)};
}

}  // namespace

WeightMatrix::WeightMatrix(const TensorView& tensor, bool keep_blocks)
    : type_(tensor.type), rows_(tensor.rows()), cols_(tensor.row_length()), row_bytes_(tensor.row_bytes()) {
  if (keep_blocks && block_format(type_) && cpu::have_block_matvec()) {
    blocks_.resize(sz(rows_ * row_bytes_));
    std::memcpy(blocks_.data(), tensor.data, blocks_.size());
    return;
  }
  type_ = DType::F32;
  row_bytes_ = cols_ * static_cast<int64_t>(sizeof(float));
  dense_.resize(sz(rows_ * cols_));
  dequantize_rows(tensor, 0, rows_, dense_.data());
}

int64_t WeightMatrix::bytes() const {
  return static_cast<int64_t>(dense_.size() * sizeof(float) + blocks_.size());
}

void WeightMatrix::copy_row(int64_t r, float* out) const {
  if (is_blocks()) {
    dequantize(type_, blocks_.data() + r * row_bytes_, cols_, out);
  } else {
    std::copy_n(dense_.data() + r * cols_, cols_, out);
  }
}

void WeightMatrix::multiply(const float* x, int64_t n, float* y) const {
  if (is_blocks()) {
    if (n < kTileFromRows) {
      multiply_together({{this, x, y}}, n);
    } else {
      multiply_blocks_by_tiles(x, n, y);
    }
  } else if (n == 1) {
    // BLAS's GEMM would first copy all of W into its packed layout, which
    // for one row costs more than the product.
    cblas_sgemv(CblasRowMajor, CblasNoTrans, static_cast<blasint>(rows_), static_cast<blasint>(cols_), 1.0f,
                dense_.data(), static_cast<blasint>(cols_), x, 1, 0.0f, y, 1);
  } else {
    cpu::gemm_abt(n, rows_, cols_, x, cols_, dense_.data(), cols_, y, rows_);
  }
}

void WeightMatrix::multiply_rows(const float* x, int64_t n, const float* sums, int64_t first, int64_t last,
                                 float* y) const {
  const cpu::BlockFormat format = *block_format(type_);
  const int64_t blocks = cols_ / 32;
  // Token after token over the same rows, which stay in cache.
  for (int64_t t = 0; t < n; ++t) {
    cpu::block_matvec(format, blocks_.data(), row_bytes_, cols_, first, last, x + t * cols_, sums + t * blocks,
                      y + t * rows_);
  }
}

void multiply_together(std::initializer_list<Product> products, int64_t n) {
  const bool by_rows = std::all_of(products.begin(), products.end(), [n](const Product& p) {
    return p.w->is_blocks() && n < kTileFromRows;
  });
  if (!by_rows) {
    for (const Product& p : products) p.w->multiply(p.x, n, p.y);
    return;
  }
  // The block sums of each x, once.
  std::vector<std::vector<float>> sums;
  int64_t weights = 0;
  for (const Product& p : products) {
    const int64_t cols = p.w->cols(), blocks = cols / 32;
    sums.emplace_back(sz(n * blocks));
    for (int64_t t = 0; t < n; ++t) cpu::block_sums(p.x + t * cols, cols, sums.back().data() + t * blocks);
    weights += p.w->rows() * cols;
  }
#pragma omp parallel if (weights >= kParallelWeights)
  {
    const int thread = omp_get_thread_num(), threads = omp_get_num_threads();
    size_t i = 0;
    for (const Product& p : products) {
      const auto [first, last] = thread_rows(p.w->rows(), thread, threads);
      p.w->multiply_rows(p.x, n, sums[i++].data(), first, last, p.y);
    }
  }
}

void WeightMatrix::multiply_blocks_by_tiles(const float* x, int64_t n, float* y) const {
  // One tile per thread where it fits in 2 MiB of float32, else several.
  const int threads = omp_get_max_threads();
  const int64_t max_tile_rows = std::max<int64_t>(8, (int64_t{1} << 19) / cols_ / 8 * 8);
  const int64_t tile_rows = std::min(max_tile_rows, (rows_ + threads - 1) / threads);
  const int64_t tiles = (rows_ + tile_rows - 1) / tile_rows;
  const cpu::SingleThreadedBlas one_thread_each;
#pragma omp parallel
  {
    // Kept per thread between calls (at most 2 MiB): zero-filling a fresh
    // one each time cost as much as the dequantisation.
    thread_local std::vector<float> tile;
    if (tile.size() < sz(tile_rows * cols_)) tile.resize(sz(tile_rows * cols_));
#pragma omp for schedule(static)
    for (int64_t i = 0; i < tiles; ++i) {
      const int64_t first = i * tile_rows, count = std::min(tile_rows, rows_ - first);
      cpu::block_dequantize(*block_format(type_), blocks_.data() + first * row_bytes_, count * cols_ / 32,
                            tile.data());
      cpu::gemm_abt(n, count, cols_, x, cols_, tile.data(), cols_, y + first, rows_);
    }
  }
}

}  // namespace neuronlens::runtime

#include "runtime/weight_matrix.h"

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>

#include "backends/cpu/block_matvec.h"
#include "backends/cpu/block_q8.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kquant.h"
#include "backends/cpu/omp_exceptions.h"

namespace neuronlens::runtime {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Below this many weights a product runs on one thread: waking the others
// costs more than they save.
constexpr int64_t kParallelWeights = int64_t{1} << 15;
// From this many rows of x on, the float-activation block path dequantises
// tiles of W and uses GEMM: one dequantisation per tile then costs less than
// re-reading the blocks once per row.
constexpr int64_t kTileFromRows = 8;

// Rows [first, last) of `rows` that thread `thread` of `threads` takes,
// in runs of 8 rows.
std::pair<int64_t, int64_t> thread_rows(int64_t rows, int thread, int threads) {
  const int64_t runs = (rows + 7) / 8;
  const int64_t first = runs * thread / threads * 8, last = runs * (thread + 1) / threads * 8;
  return {std::min(first, rows), std::min(last, rows)};
}

// A buffer kept per thread between calls and grown, never shrunk or zeroed:
// zero-filling a fresh one each call cost as much as the work in it.
template <typename T>
T* scratch(std::unique_ptr<T[]>& buffer, size_t& capacity, size_t needed) {
  if (capacity < needed) {
    buffer.reset(new T[needed]);
    capacity = needed;
  }
  return buffer.get();
}

// What one product prepares before the threads start: x's block sums for
// the float-activation block kernels, or x quantised for the 8-bit ones.
struct PreparedInput {
  std::vector<float> sums;                      // [n, cols / 32]: Blocks
  std::unique_ptr<cpu::Q8KBlock[]> quantized;   // [n, cols / 256]: KQuant
  std::unique_ptr<cpu::Q8Block[]> quantized32;  // [n, cols / 32]: Int8Blocks
};

// Tokens' inputs are prepared on the threads once a prompt has this many:
// below it (a generated token) waking them costs more than the work.
constexpr int64_t kParallelTokens = 16;

PreparedInput prepare_input(const WeightMatrix& w, const float* x, int64_t n) {
  PreparedInput in;
  const int64_t cols = w.cols();
  const WeightKernel kernel = w.kernel();
  const int64_t blocks = kernel == WeightKernel::KQuant ? cols / cpu::kSuperBlock : cols / 32;
  if (kernel == WeightKernel::Blocks) {
    in.sums.resize(sz(n * blocks));  // of 32 values, whatever the type's own block
  } else if (kernel == WeightKernel::Int8Blocks) {
    in.quantized32.reset(new cpu::Q8Block[sz(n * blocks)]);
  } else {
    in.quantized.reset(new cpu::Q8KBlock[sz(n * blocks)]);
  }
  // Each token's row on its own: the same values whatever the thread count.
#pragma omp parallel for schedule(static) if (n >= kParallelTokens)
  for (int64_t t = 0; t < n; ++t) {
    if (kernel == WeightKernel::Blocks) {
      cpu::block_sums(x + t * cols, cols, in.sums.data() + t * blocks);
    } else if (kernel == WeightKernel::Int8Blocks) {
      cpu::quantize_q8_blocks(x + t * cols, cols, in.quantized32.get() + t * blocks);
    } else {
      cpu::quantize_q8k(x + t * cols, cols, in.quantized.get() + t * blocks);
    }
  }
  return in;
}

}  // namespace

WeightChoice WeightMatrix::choose(const TensorView& tensor, bool keep_blocks, bool float_activations) {
  const bool aligned = reinterpret_cast<uintptr_t>(tensor.data) % alignof(float) == 0;
  if (tensor.type == DType::F32) return {WeightKernel::Float32, aligned, ""};
  if (!keep_blocks) return {WeightKernel::Float32, false, ""};
  if (cpu::kformat_of(tensor.type)) return {float_activations ? WeightKernel::Tiles : WeightKernel::KQuant, true, ""};
  // F16 and BF16 rows go through the block kernels 32 values at a time.
  if (const auto format = cpu::block_format_of(tensor.type); format && tensor.row_length() % 32 == 0) {
    const bool int8 = !float_activations && cpu::has_q8_kernel(*format);
    return {int8 ? WeightKernel::Int8Blocks : WeightKernel::Blocks, true, ""};
  }
  return {WeightKernel::Float32, false, std::string(dtype_name(tensor.type)) + " has no kernel here: dequantised to float32"};
}

WeightMatrix::WeightMatrix(const TensorView& tensor, bool keep_blocks, bool float_activations)
    : type_(tensor.type), rows_(tensor.rows()), cols_(tensor.row_length()),
      row_bytes_(tensor.row_bytes()), data_(tensor.data) {
  WeightChoice choice = choose(tensor, keep_blocks, float_activations);
  kernel_ = choice.kernel;
  fallback_reason_ = std::move(choice.fallback_reason);
  if (choice.in_place) return;
  type_ = DType::F32;
  row_bytes_ = cols_ * static_cast<int64_t>(sizeof(float));
  owned_.resize(sz(rows_ * row_bytes_));
  dequantize_rows(tensor, 0, rows_, reinterpret_cast<float*>(owned_.data()));
  data_ = owned_.data();
}

void WeightMatrix::copy_row(int64_t r, float* out) const {
  dequantize(type_, data_ + r * row_bytes_, cols_, out);
}

void WeightMatrix::multiply(const float* x, int64_t n, float* y) const {
  switch (kernel_) {
    case WeightKernel::KQuant:
    case WeightKernel::Int8Blocks: return multiply_together({{this, x, y}}, n);
    case WeightKernel::Blocks:
      if (n < kTileFromRows) return multiply_together({{this, x, y}}, n);
      return multiply_blocks_by_tiles(x, n, y);
    case WeightKernel::Tiles: return multiply_blocks_by_tiles(x, n, y);
    case WeightKernel::Float32:
      if (n == 1) {
        // BLAS's GEMM would first copy all of W into its packed layout, which
        // for one row costs more than the product.
        cpu::gemv(rows_, cols_, floats(), x, y);
      } else {
        cpu::gemm_abt(n, rows_, cols_, x, cols_, floats(), cols_, y, rows_);
      }
      return;
  }
}

void multiply_together(std::initializer_list<Product> products, int64_t n) {
  const bool by_rows = std::all_of(products.begin(), products.end(), [n](const Product& p) {
    return p.w->kernel() == WeightKernel::KQuant || p.w->kernel() == WeightKernel::Int8Blocks ||
           (p.w->kernel() == WeightKernel::Blocks && n < kTileFromRows);
  });
  if (!by_rows) {
    for (const Product& p : products) p.w->multiply(p.x, n, p.y);
    return;
  }
  // One prepared input per distinct (x, kernel): q, k and v of a layer, or
  // gate and up, read the same x, quantised once for all of them.
  std::vector<PreparedInput> prepared;
  std::vector<size_t> input_of;  // [product] -> prepared
  prepared.reserve(products.size());
  int64_t weights = 0;
  for (auto p = products.begin(); p != products.end(); ++p) {
    size_t found = prepared.size();
    for (auto q = products.begin(); q != p; ++q) {
      if (q->x == p->x && q->w->kernel() == p->w->kernel() && q->w->cols() == p->w->cols()) {
        found = input_of[static_cast<size_t>(q - products.begin())];
        break;
      }
    }
    if (found == prepared.size()) prepared.push_back(prepare_input(*p->w, p->x, n));
    input_of.push_back(found);
    weights += p->w->rows() * p->w->cols();
  }
  cpu::FirstException failure;
#pragma omp parallel if (weights >= kParallelWeights)
  failure.run([&] {
    const int thread = omp_get_thread_num(), threads = omp_get_num_threads();
    size_t i = 0;
    for (const Product& p : products) {
      const WeightMatrix& w = *p.w;
      const PreparedInput& in = prepared[input_of[i++]];
      const auto [first, last] = thread_rows(w.rows(), thread, threads);
      if (w.kernel() == WeightKernel::Blocks) {
        const cpu::BlockFormat format = *cpu::block_format_of(w.type_);
        const int64_t blocks = w.cols() / 32;
        // Token after token over the same rows, which stay in cache.
        for (int64_t t = 0; t < n; ++t) {
          cpu::block_matvec(format, w.data_, w.row_bytes_, w.cols(), first, last, p.x + t * w.cols(),
                            in.sums.data() + t * blocks, p.y + t * w.rows());
        }
        continue;
      }
      if (w.kernel() == WeightKernel::Int8Blocks) {
        cpu::block_q8_matmul(*cpu::block_format_of(w.type_), w.data_, w.row_bytes_, w.cols() / 32, first, last,
                             in.quantized32.get(), n, p.y, w.rows());
        continue;
      }
      cpu::kquant_matmul(*cpu::kformat_of(w.type_), w.data_, w.row_bytes_, w.cols() / cpu::kSuperBlock, first, last,
                         in.quantized.get(), n, p.y, w.rows());
    }
  });
  failure.rethrow();
}

void WeightMatrix::multiply_blocks_by_tiles(const float* x, int64_t n, float* y) const {
  // One tile per thread where it fits in 2 MiB of float32, else several.
  const int threads = omp_get_max_threads();
  const int64_t max_tile_rows = std::max<int64_t>(8, (int64_t{1} << 19) / cols_ / 8 * 8);
  const int64_t tile_rows = std::min(max_tile_rows, (rows_ + threads - 1) / threads);
  const int64_t tiles = (rows_ + tile_rows - 1) / tile_rows;
  const cpu::OneThreadBlas one_thread_each;  // serialised against other BLAS calls (gemm.h)
  cpu::FirstException failure;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < tiles; ++i) {
    failure.run([&] {
      thread_local std::unique_ptr<float[]> tile;
      thread_local size_t tile_capacity = 0;
      float* floats = scratch(tile, tile_capacity, sz(tile_rows * cols_));
      const int64_t first = i * tile_rows, count = std::min(tile_rows, rows_ - first);
      if (kernel_ == WeightKernel::Tiles) {
        dequantize(type_, data_ + first * row_bytes_, count * cols_, floats);
      } else {
        cpu::block_dequantize(*cpu::block_format_of(type_), data_ + first * row_bytes_, count * cols_ / 32, floats);
      }
      one_thread_each.gemm_abt(n, count, cols_, x, cols_, floats, cols_, y + first, rows_);
    });
  }
  failure.rethrow();
}

}  // namespace neuronlens::runtime

// block_matvec.h's entry points: the choice of implementation per call.
#include "backends/cpu/block_matvec.h"

#include "backends/cpu/block_matvec_kernels.h"

namespace neuronlens::cpu {
// These kernels have no AVX-512 versions: that path runs the AVX2 ones
// (runs_avx2_kernels).

std::optional<BlockFormat> block_format_of(DType type) {
  switch (type) {
    case DType::Q4_0: return BlockFormat::Q4_0;
    case DType::Q4_1: return BlockFormat::Q4_1;
    case DType::Q5_0: return BlockFormat::Q5_0;
    case DType::Q5_1: return BlockFormat::Q5_1;
    case DType::Q8_0: return BlockFormat::Q8_0;
    case DType::F16: return BlockFormat::F16;
    case DType::BF16: return BlockFormat::BF16;
    default: return std::nullopt;
  }
}

void block_matvec(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t first_row,
                  int64_t last_row, const float* x, const float* block_sums, float* y, KernelPath path) {
  if (runs_avx2_kernels(path)) {
    require_path(path, "block_matvec");
#if defined(__x86_64__)
    return avx2::block_matvec(format, w, row_bytes, cols, first_row, last_row, x, block_sums, y);
#endif
  }
  portable::block_matvec(format, w, row_bytes, cols, first_row, last_row, x, block_sums, y);
}

void block_dequantize(BlockFormat format, const uint8_t* blocks, int64_t n_blocks, float* out, KernelPath path) {
  if (runs_avx2_kernels(path)) {
    require_path(path, "block_dequantize");
#if defined(__x86_64__)
    return avx2::block_dequantize(format, blocks, n_blocks, out);
#endif
  }
  portable::block_dequantize(format, blocks, n_blocks, out);
}

void block_sums(const float* x, int64_t cols, float* sums) {
  for (int64_t b = 0; b < cols / 32; ++b) {
    float s = 0;
    for (int64_t i = 0; i < 32; ++i) s += x[b * 32 + i];
    sums[b] = s;
  }
}

}  // namespace neuronlens::cpu

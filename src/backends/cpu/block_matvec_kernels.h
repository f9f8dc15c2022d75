// The two implementations behind block_matvec.h, one file each
// (block_matvec_avx2.cpp, block_matvec_portable.cpp); block_matvec.cpp picks
// one per call. Arguments as in block_matvec.h.
#pragma once

#include <cstdint>
#include <type_traits>

#include "backends/cpu/block_matvec.h"

namespace neuronlens::cpu {

// Bytes of one block of 32 values.
constexpr int64_t block_bytes(BlockFormat format) {
  switch (format) {
    case BlockFormat::Q4_0: return 18;
    case BlockFormat::Q4_1: return 20;
    case BlockFormat::Q5_0: return 22;
    case BlockFormat::Q5_1: return 24;
    case BlockFormat::Q8_0: return 34;
    case BlockFormat::F16:
    case BlockFormat::BF16: return 64;
  }
  return 0;
}

// F16 and BF16: 32 plain values, no scale.
constexpr bool is_plain(BlockFormat format) { return format == BlockFormat::F16 || format == BlockFormat::BF16; }

// Whether the values are d * q + m (else d * q, or plain).
constexpr bool has_offset(BlockFormat format) { return format == BlockFormat::Q4_1 || format == BlockFormat::Q5_1; }

// Calls fn(std::integral_constant<BlockFormat, format>{}): the one switch
// from a run-time format to the kernel templates.
template <class Fn>
void with_format(BlockFormat format, Fn&& fn) {
  using F = BlockFormat;
  switch (format) {
    case F::Q4_0: return fn(std::integral_constant<F, F::Q4_0>{});
    case F::Q4_1: return fn(std::integral_constant<F, F::Q4_1>{});
    case F::Q5_0: return fn(std::integral_constant<F, F::Q5_0>{});
    case F::Q5_1: return fn(std::integral_constant<F, F::Q5_1>{});
    case F::Q8_0: return fn(std::integral_constant<F, F::Q8_0>{});
    case F::F16: return fn(std::integral_constant<F, F::F16>{});
    case F::BF16: return fn(std::integral_constant<F, F::BF16>{});
  }
}

#if defined(__x86_64__)
namespace avx2 {
void block_matvec(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t first_row,
                  int64_t last_row, const float* x, const float* block_sums, float* y);
void block_dequantize(BlockFormat format, const uint8_t* blocks, int64_t n_blocks, float* out);
}  // namespace avx2
#endif

namespace portable {
void block_matvec(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t cols, int64_t first_row,
                  int64_t last_row, const float* x, const float* block_sums, float* y);
void block_dequantize(BlockFormat format, const uint8_t* blocks, int64_t n_blocks, float* out);
}  // namespace portable

}  // namespace neuronlens::cpu

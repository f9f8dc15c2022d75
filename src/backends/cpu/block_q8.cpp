// block_q8.h: dispatch by KernelPath, and the portable path (plain C++, the
// reference the AVX2 path is tested against besides gguf-py).
#include "backends/cpu/block_q8.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "backends/cpu/block_values.h"
#include "io/half.h"
#include "neuronlens/error.h"

namespace neuronlens::cpu {
namespace {

float rounded_to_half(float value) { return fp16_to_fp32(fp32_to_fp16(value)); }

void quantize_portable(const float* x, int64_t cols, Q8Block* out) {
  for (int64_t b = 0; b < cols / 32; ++b, x += 32) {
    Q8Block& o = out[b];
    float max = 0;
    bool finite = true;
    for (int i = 0; i < 32; ++i) {
      max = std::max(max, std::fabs(x[i]));
      finite = finite && std::isfinite(x[i]);
    }
    if (!finite) {
      // An overflowed activation: the product must not look finite.
      o.d = o.s = std::numeric_limits<float>::quiet_NaN();
      std::memset(o.q, 0, sizeof o.q);
      continue;
    }
    const float d = max / 127.0f;
    const float inverse = max != 0 ? 127.0f / max : 0.0f;
    int sum = 0;
    for (int i = 0; i < 32; ++i) {
      // Round half to even, as the SIMD path's conversion does.
      o.q[i] = static_cast<int8_t>(std::nearbyint(x[i] * inverse));
      sum += o.q[i];
    }
    o.d = rounded_to_half(d);
    o.s = rounded_to_half(d * static_cast<float>(sum));
  }
}

template <BlockFormat kFormat>
void matmul_portable(const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first, int64_t last,
                     const Q8Block* x, int64_t tokens, float* y, int64_t ldy) {
  constexpr int64_t kBlockBytes = block_bytes(kFormat);
  for (int64_t t = 0; t < tokens; ++t) {
    const Q8Block* xt = x + t * blocks;
    for (int64_t r = first; r < last; ++r) {
      const uint8_t* block = w + r * row_bytes;
      float acc[8] = {};
      float offset_sum = 0;
      for (int64_t b = 0; b < blocks; ++b, block += kBlockBytes) {
        int q[32];
        portable::block_integers<kFormat>(block, q);
        const float scale = fp16_to_fp32(static_cast<uint16_t>(block[0] | block[1] << 8)) * xt[b].d;
        for (int l = 0; l < 8; ++l) {
          int lane = 0;
          for (int k = 4 * l; k < 4 * l + 4; ++k) lane += q[k] * xt[b].q[k];
          acc[l] += scale * static_cast<float>(lane);
        }
        if constexpr (has_offset(kFormat)) {
          offset_sum += fp16_to_fp32(static_cast<uint16_t>(block[2] | block[3] << 8)) * xt[b].s;
        }
      }
      y[t * ldy + r] = portable::horizontal_sum(acc) + offset_sum;
    }
  }
}

}  // namespace

// No AVX-512 versions: Avx512Vnni runs the AVX2 code (runs_avx2_kernels).
void quantize_q8_blocks(const float* x, int64_t cols, Q8Block* out, KernelPath path) {
  require_path(path, "quantize_q8_blocks");
#if defined(__x86_64__)
  if (runs_avx2_kernels(path)) return avx2::quantize_q8_blocks(x, cols, out);
#endif
  quantize_portable(x, cols, out);
}

void block_q8_matmul(BlockFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                     int64_t last_row, const Q8Block* x, int64_t tokens, float* y, int64_t ldy, KernelPath path) {
  require_path(path, "block_q8_matmul");
  if (!has_q8_kernel(format)) throw internal_error("block_q8_matmul: F16 and BF16 have no 8-bit-activation kernel");
#if defined(__x86_64__)
  if (runs_avx2_kernels(path)) return avx2::block_q8_matmul(format, w, row_bytes, blocks, first_row, last_row, x, tokens, y, ldy);
#endif
  with_format(format, [&](auto f) {
    if constexpr (has_q8_kernel(decltype(f)::value)) {
      matmul_portable<decltype(f)::value>(w, row_bytes, blocks, first_row, last_row, x, tokens, y, ldy);
    }
  });
}

}  // namespace neuronlens::cpu

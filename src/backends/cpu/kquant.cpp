// K-quant products: dispatch by KernelPath, and the portable path (plain C++,
// the reference the SIMD paths are tested against besides gguf-py).
#include "backends/cpu/kquant.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "backends/cpu/kquant_impl.h"
#include "io/half.h"

namespace neuronlens::cpu {
namespace {

float half_at(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return fp16_to_fp32(bits);
}

void quantize_q8k_portable(const float* x, int64_t cols, Q8KBlock* out) {
  for (int64_t b = 0; b < cols / kSuperBlock; ++b, x += kSuperBlock) {
    Q8KBlock& o = out[b];
    float amax = 0;
    for (int64_t i = 0; i < kSuperBlock; ++i) amax = std::max(amax, std::fabs(x[i]));
    if (amax == 0) {
      std::memset(&o, 0, sizeof o);
      continue;
    }
    const float iscale = 127.0f / amax;
    o.d = 1.0f / iscale;  // as llama.cpp rounds it: the same 8-bit activations
    for (int64_t i = 0; i < kSuperBlock; ++i) {
      // Round half to even, as the SIMD path's conversion does.
      o.q[i] = static_cast<int8_t>(std::clamp(std::nearbyint(x[i] * iscale), -127.0f, 127.0f));
    }
    for (int s = 0; s < 16; ++s) {
      int sum = 0;
      for (int k = 0; k < 16; ++k) sum += o.q[16 * s + k];
      o.sums[s] = static_cast<int16_t>(sum);
    }
  }
}

void scales_q2_k(const uint8_t* block, KUnpacked& o) {
  o.d = half_at(block + 80);
  o.dmin = half_at(block + 82);
  for (int s = 0; s < 16; ++s) {
    o.scale[s] = static_cast<int16_t>(block[s] & 0x0F);
    o.min[s] = static_cast<int16_t>(block[s] >> 4);
  }
}

void values_q2_k(const uint8_t* block, KUnpacked& o) {
  const uint8_t* qs = block + 16;
  // Sub-block s = half * 8 + shift_index * 2 + sub holds bits 2*shift_index of
  // qs[half * 32 + sub * 16 + k].
  for (int s = 0; s < 16; ++s) {
    const int half = s / 8, shift_index = (s / 2) % 4, sub = s % 2;
    const uint8_t* q = qs + half * 32 + sub * 16;
    for (int k = 0; k < 16; ++k) o.q[16 * s + k] = static_cast<uint8_t>((q[k] >> (2 * shift_index)) & 3);
  }
}

void scales_q3_k(const uint8_t* block, KUnpacked& o) {
  const uint8_t* packed_scales = block + 96;
  o.d = o.dmin = half_at(block + 108);
  for (int s = 0; s < 16; ++s) {
    const int low = (packed_scales[s % 8] >> (4 * (s / 8))) & 0x0F;
    const int high = (packed_scales[8 + s % 4] >> (2 * (s / 4))) & 0x03;
    const int scale = (low | (high << 4)) - 32;
    o.scale[s] = static_cast<int16_t>(scale);
    o.min[s] = static_cast<int16_t>(4 * scale);  // value = q - 4
  }
}

void values_q3_k(const uint8_t* block, KUnpacked& o) {
  const uint8_t* hmask = block;
  const uint8_t* qs = block + 32;
  for (int s = 0; s < 16; ++s) {
    const int group = s / 2, half = group / 4, shift_index = group % 4, sub = s % 2;
    const uint8_t* q = qs + half * 32 + sub * 16;
    const uint8_t* high = hmask + sub * 16;
    for (int k = 0; k < 16; ++k) {
      const int low = (q[k] >> (2 * shift_index)) & 3;
      o.q[16 * s + k] = static_cast<uint8_t>(low | (((high[k] >> group) & 1) << 2));
    }
  }
}

// Q4_K and Q5_K: each sub-block of 32's scale and min written for both of
// its halves of 16.
void unpack_k4_scales(const uint8_t* packed, KUnpacked& o) {
  uint8_t scales_and_mins[16];
  k4_scales_and_mins(packed, scales_and_mins);
  for (int s = 0; s < 8; ++s) {
    o.scale[2 * s] = o.scale[2 * s + 1] = scales_and_mins[s];
    o.min[2 * s] = o.min[2 * s + 1] = scales_and_mins[8 + s];
  }
}

void scales_q4_k(const uint8_t* block, KUnpacked& o) {
  o.d = half_at(block);
  o.dmin = half_at(block + 2);
  unpack_k4_scales(block + 4, o);
}

void values_q4_k(const uint8_t* block, KUnpacked& o) {
  const uint8_t* qs = block + 16;
  // Sub-block s of 32 holds nibble s % 2 of qs[(s / 2) * 32 + k].
  for (int s = 0; s < 8; ++s) {
    for (int k = 0; k < 32; ++k) o.q[32 * s + k] = static_cast<uint8_t>((qs[(s / 2) * 32 + k] >> (4 * (s % 2))) & 0x0F);
  }
}

void values_q5_k(const uint8_t* block, KUnpacked& o) {
  const uint8_t* qh = block + 16;
  const uint8_t* qs = block + 48;
  for (int s = 0; s < 8; ++s) {
    for (int k = 0; k < 32; ++k) {
      const int low = (qs[(s / 2) * 32 + k] >> (4 * (s % 2))) & 0x0F;
      o.q[32 * s + k] = static_cast<uint8_t>(low | (((qh[k] >> s) & 1) << 4));
    }
  }
}

void scales_q6_k(const uint8_t* block, KUnpacked& o) {
  const auto* scales = reinterpret_cast<const int8_t*>(block + 192);
  o.d = o.dmin = half_at(block + 208);
  for (int s = 0; s < 16; ++s) {
    o.scale[s] = scales[s];
    o.min[s] = static_cast<int16_t>(32 * scales[s]);  // value = q - 32
  }
}

void values_q6_k(const uint8_t* block, KUnpacked& o) {
  const uint8_t* ql = block;
  const uint8_t* qh = block + 128;
  // Each 128-value half: value 32*g + k takes nibble g/2 of ql[k + 32*(g%2)]
  // and bit pair g of qh[k].
  for (int half = 0; half < 2; ++half) {
    for (int g = 0; g < 4; ++g) {
      for (int k = 0; k < 32; ++k) {
        const int low = (ql[half * 64 + 32 * (g % 2) + k] >> (4 * (g / 2))) & 0x0F;
        const int high = (qh[half * 32 + k] >> (2 * g)) & 3;
        o.q[half * 128 + 32 * g + k] = static_cast<uint8_t>(low | (high << 4));
      }
    }
  }
}

void unpack_portable(KFormat format, const uint8_t* blocks, int64_t n_blocks, KUnpacked* out) {
  const int64_t bytes = kformat_block_bytes(format);
  for (int64_t b = 0; b < n_blocks; ++b, blocks += bytes) {
    portable::unpack_kscales(format, blocks, out[b]);
    switch (format) {
      case KFormat::Q2_K: values_q2_k(blocks, out[b]); break;
      case KFormat::Q3_K: values_q3_k(blocks, out[b]); break;
      case KFormat::Q4_K: values_q4_k(blocks, out[b]); break;
      case KFormat::Q5_K: values_q5_k(blocks, out[b]); break;
      case KFormat::Q6_K: values_q6_k(blocks, out[b]); break;
    }
  }
}

void product_portable(const KUnpacked* w, int64_t rows, int64_t blocks, const Q8KBlock* x, int64_t tokens, float* y,
                      int64_t ldy) {
  for (int64_t t = 0; t < tokens; ++t) {
    for (int64_t r = 0; r < rows; ++r) {
      float acc = 0;
      for (int64_t b = 0; b < blocks; ++b) {
        const KUnpacked& wb = w[r * blocks + b];
        const Q8KBlock& xb = x[t * blocks + b];
        int32_t dot = 0, offset = 0;
        for (int s = 0; s < 16; ++s) {
          int32_t sub = 0;
          for (int k = 0; k < 16; ++k) sub += int32_t{wb.q[16 * s + k]} * xb.q[16 * s + k];
          dot += wb.scale[s] * sub;
          offset += wb.min[s] * xb.sums[s];
        }
        acc += static_cast<float>(dot) * (wb.d * xb.d) - static_cast<float>(offset) * (wb.dmin * xb.d);
      }
      y[t * ldy + r] = acc;
    }
  }
}

}  // namespace

void portable::unpack_kscales(KFormat format, const uint8_t* block, KUnpacked& out) {
  switch (format) {
    case KFormat::Q2_K: return scales_q2_k(block, out);
    case KFormat::Q3_K: return scales_q3_k(block, out);
    case KFormat::Q4_K:
    case KFormat::Q5_K: return scales_q4_k(block, out);  // the same fields at the same offsets
    case KFormat::Q6_K: return scales_q6_k(block, out);
  }
}

std::optional<KFormat> kformat_of(DType type) {
  switch (type) {
    case DType::Q2_K: return KFormat::Q2_K;
    case DType::Q3_K: return KFormat::Q3_K;
    case DType::Q4_K: return KFormat::Q4_K;
    case DType::Q5_K: return KFormat::Q5_K;
    case DType::Q6_K: return KFormat::Q6_K;
    default: return std::nullopt;
  }
}

int64_t kformat_block_bytes(KFormat format) {
  switch (format) {
    case KFormat::Q2_K: return 84;
    case KFormat::Q3_K: return 110;
    case KFormat::Q4_K: return 144;
    case KFormat::Q5_K: return 176;
    case KFormat::Q6_K: return 210;
  }
  return 0;
}

// The quantiser and the unpacking have no AVX-512 versions (a small share of
// the work): Avx512Vnni runs their AVX2 code (runs_avx2_kernels).
void quantize_q8k(const float* x, int64_t cols, Q8KBlock* out, KernelPath path) {
  require_path(path, "quantize_q8k");
#if defined(__x86_64__)
  if (runs_avx2_kernels(path)) return avx2::quantize_q8k(x, cols, out);
#endif
  quantize_q8k_portable(x, cols, out);
}

void unpack_kblocks(KFormat format, const uint8_t* blocks, int64_t n_blocks, KUnpacked* out, KernelPath path) {
  require_path(path, "unpack_kblocks");
#if defined(__x86_64__)
  if (runs_avx2_kernels(path)) return avx2::unpack_kblocks(format, blocks, n_blocks, out);
#endif
  unpack_portable(format, blocks, n_blocks, out);
}

void kquant_product(const KUnpacked* w, int64_t rows, int64_t blocks, const Q8KBlock* x, int64_t tokens, float* y,
                    int64_t ldy, KernelPath path) {
  require_path(path, "kquant_product");
  switch (path) {
#if defined(__x86_64__)
    case KernelPath::Avx512Vnni: return avx512::kquant_product(w, rows, blocks, x, tokens, y, ldy);
    case KernelPath::Avx2: return avx2::kquant_product(w, rows, blocks, x, tokens, y, ldy);
#endif
    default: return product_portable(w, rows, blocks, x, tokens, y, ldy);
  }
}

void kquant_matmul(KFormat format, const uint8_t* w, int64_t row_bytes, int64_t blocks, int64_t first_row,
                   int64_t last_row, const Q8KBlock* x, int64_t tokens, float* y, int64_t ldy, KernelPath path) {
  require_path(path, "kquant_matmul");
#if defined(__x86_64__)
  if (path == KernelPath::Avx512Vnni &&
      avx512::kquant_matmul_direct(format, w, row_bytes, blocks, first_row, last_row, x, tokens, y, ldy)) {
    return;
  }
  if (path == KernelPath::Avx2 &&
      avx2::kquant_matmul_direct(format, w, row_bytes, blocks, first_row, last_row, x, tokens, y, ldy)) {
    return;
  }
#endif
  // A tile of 16 unpacked rows (of a 4096-wide matrix: 84 KB, in L2) that
  // every token then reads; kept per thread between calls.
  constexpr int64_t kTileRows = 16;
  thread_local std::vector<KUnpacked> tile;
  if (tile.size() < static_cast<size_t>(kTileRows * blocks)) tile.resize(static_cast<size_t>(kTileRows * blocks));
  for (int64_t r = first_row; r < last_row; r += kTileRows) {
    const int64_t count = std::min(kTileRows, last_row - r);
    unpack_kblocks(format, w + r * row_bytes, count * blocks, tile.data(), path);
    kquant_product(tile.data(), count, blocks, x, tokens, y + r, ldy, path);
  }
}

}  // namespace neuronlens::cpu

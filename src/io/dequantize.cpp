// Dequantisation of GGUF tensor data to float32, bit-identical to gguf-py's
// `gguf.quants.dequantize` (gguf 0.19.0, quants.py).
//
// Block layouts (ggml-common.h; all little-endian, blocks packed back to back
// with no alignment, so fp16 fields are read with memcpy). `half` is IEEE fp16.
//
//   Q4_0  18 B / 32 values:  half d; uint8 qs[16]
//         x[k] = d * (lo4(qs[k]) - 8),  x[k+16] = d * (hi4(qs[k]) - 8)
//   Q4_1  20 B / 32 values:  half d; half m; uint8 qs[16]
//         x[k] = d * lo4(qs[k]) + m,    x[k+16] = d * hi4(qs[k]) + m
//   Q5_0  22 B / 32 values:  half d; uint32 qh; uint8 qs[16]
//         5th bit of value i is bit i of qh;  x[i] = d * (q5[i] - 16)
//   Q5_1  24 B / 32 values:  half d; half m; uint32 qh; uint8 qs[16]
//         x[i] = d * q5[i] + m
//   Q8_0  34 B / 32 values:  half d; int8 qs[32]
//         x[i] = qs[i] * d
//   Q2_K  84 B / 256 values: uint8 scales[16]; uint8 qs[64]; half d; half dmin
//         16 sub-blocks of 16; scales[s] = min4 << 4 | scale4; 2-bit values,
//         x = (d * scale4) * q - (dmin * min4)
//   Q3_K 110 B / 256 values: uint8 hmask[32]; uint8 qs[64]; uint8 scales[12]; half d
//         16 sub-blocks of 16 with 6-bit signed scales (packed, minus 32);
//         2 low bits in qs, the high bit in hmask *inverted* (a set bit means
//         no offset, a clear bit subtracts 4): x = (d * scale) * q
//   Q4_K 144 B / 256 values: half d; half dmin; uint8 scales[12]; uint8 qs[128]
//         8 sub-blocks of 32 with 6-bit scale and min packed in scales[12],
//         x = (d * scale) * q - (dmin * min)
//   Q5_K 176 B / 256 values: half d; half dmin; uint8 scales[12]; uint8 qh[32]; uint8 qs[128]
//         as Q4_K, 5th bit of sub-block s is bit s of qh[k]
//   Q6_K 210 B / 256 values: uint8 ql[128]; uint8 qh[64]; int8 scales[16]; half d
//         16 sub-blocks of 16; x = (d * scale) * (q6 - 32)
//
// Arithmetic, as gguf-py does it: everything is float32 (the fp16 fields are
// widened exactly first), the K-quants form the per-sub-block factors
// d * scale and dmin * min first, then factor * q - offset, and every product
// and sum is rounded separately (-ffp-contract=off keeps the compiler from
// fusing them). In fact every product here is exact in float32: an fp16 has
// 11 significant bits and the integers multiplied in have at most 13 between
// them (Q6_K: 8-bit scale x 6-bit q), so the order of the multiplications
// cannot change a bit. What can is the one rounding of the final "+ m" or
// "- dmin * min", the sign of zero (gguf-py gives -0.0 for a zero scale times
// a negative q, and so do we), and of course the bit layout.
#include <array>
#include <bit>
#include <cstring>
#include <string>

#include "io/half.h"
#include "neuronlens/error.h"
#include "neuronlens/tensor.h"

namespace neuronlens {

static_assert(std::endian::native == std::endian::little,
              "GGUF data is little-endian; a big-endian host would need byte swaps here");

namespace {

constexpr int kQK = 32;
constexpr int kQK_K = 256;

float load_fp16(const uint8_t* p) {
  uint16_t bits;
  std::memcpy(&bits, p, sizeof bits);
  return fp16_to_fp32(bits);
}

float to_float(int value) { return static_cast<float>(value); }

void dequantize_f32(const uint8_t* src, int64_t n, float* out) {
  // A plain copy keeps every bit, NaN payloads included (gguf-py views the bytes).
  std::memcpy(out, src, static_cast<size_t>(n) * sizeof(float));
}

void dequantize_f16(const uint8_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, src + 2 * i, sizeof bits);
    out[i] = fp16_to_fp32(bits);
  }
}

void dequantize_bf16(const uint8_t* src, int64_t n, float* out) {
  for (int64_t i = 0; i < n; ++i) {
    uint16_t bits;
    std::memcpy(&bits, src + 2 * i, sizeof bits);
    out[i] = bf16_to_fp32(bits);
  }
}

void dequantize_q4_0(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 18, out += kQK) {
    const float d = load_fp16(block);
    const uint8_t* qs = block + 2;
    for (int k = 0; k < kQK / 2; ++k) out[k] = d * to_float((qs[k] & 0x0F) - 8);
    for (int k = 0; k < kQK / 2; ++k) out[k + kQK / 2] = d * to_float((qs[k] >> 4) - 8);
  }
}

void dequantize_q4_1(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 20, out += kQK) {
    const float d = load_fp16(block);
    const float m = load_fp16(block + 2);
    const uint8_t* qs = block + 4;
    for (int k = 0; k < kQK / 2; ++k) out[k] = d * to_float(qs[k] & 0x0F) + m;
    for (int k = 0; k < kQK / 2; ++k) out[k + kQK / 2] = d * to_float(qs[k] >> 4) + m;
  }
}

// The 5-bit values of a Q5_0/Q5_1 block: low nibbles of qs[0..15] are values
// 0..15, high nibbles values 16..31, and bit i of qh is the 5th bit of value i.
void unpack_q5(const uint8_t* qs, uint32_t qh, int q5[kQK]) {
  for (int k = 0; k < kQK / 2; ++k) q5[k] = qs[k] & 0x0F;
  for (int k = 0; k < kQK / 2; ++k) q5[k + kQK / 2] = qs[k] >> 4;
  // A mask table instead of `qh >> i` lets SSE2 (no per-lane shifts) vectorise this.
  static constexpr auto kBit = [] {
    std::array<uint32_t, kQK> bits{};
    for (int i = 0; i < kQK; ++i) bits[i] = 1u << i;
    return bits;
  }();
  for (int i = 0; i < kQK; ++i) q5[i] |= (qh & kBit[i]) != 0 ? 16 : 0;
}

void dequantize_q5_0(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 22, out += kQK) {
    const float d = load_fp16(block);
    uint32_t qh;
    std::memcpy(&qh, block + 2, sizeof qh);
    const uint8_t* qs = block + 6;
    int q5[kQK];
    unpack_q5(qs, qh, q5);
    for (int i = 0; i < kQK; ++i) out[i] = d * to_float(q5[i] - 16);
  }
}

void dequantize_q5_1(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 24, out += kQK) {
    const float d = load_fp16(block);
    const float m = load_fp16(block + 2);
    uint32_t qh;
    std::memcpy(&qh, block + 4, sizeof qh);
    const uint8_t* qs = block + 8;
    int q5[kQK];
    unpack_q5(qs, qh, q5);
    for (int i = 0; i < kQK; ++i) out[i] = d * to_float(q5[i]) + m;
  }
}

void dequantize_q8_0(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 34, out += kQK) {
    const float d = load_fp16(block);
    const int8_t* qs = reinterpret_cast<const int8_t*>(block + 2);
    for (int i = 0; i < kQK; ++i) out[i] = to_float(qs[i]) * d;
  }
}

void dequantize_q2_k(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 84, out += kQK_K) {
    const uint8_t* scales = block;
    const uint8_t* qs = block + 16;
    const float d = load_fp16(block + 80);
    const float dmin = load_fp16(block + 82);
    float factor[16];
    float offset[16];
    for (int s = 0; s < 16; ++s) {
      factor[s] = d * to_float(scales[s] & 0x0F);
      offset[s] = dmin * to_float(scales[s] >> 4);
    }
    // Value i = half * 128 + shift_index * 32 + k holds bits 2*shift_index of qs[half * 32 + k].
    for (int half = 0; half < 2; ++half) {
      for (int shift_index = 0; shift_index < 4; ++shift_index) {
        for (int sub = 0; sub < 2; ++sub) {  // two sub-blocks of 16 share a shift
          const int s = half * 8 + shift_index * 2 + sub;
          const uint8_t* q = qs + half * 32 + sub * 16;
          float* y = out + s * 16;
          for (int k = 0; k < 16; ++k) {
            y[k] = factor[s] * to_float((q[k] >> (2 * shift_index)) & 3) - offset[s];
          }
        }
      }
    }
  }
}

void dequantize_q3_k(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 110, out += kQK_K) {
    const uint8_t* hmask = block;
    const uint8_t* qs = block + 32;
    const uint8_t* packed_scales = block + 96;
    const float d = load_fp16(block + 108);
    // Scale s: low 4 bits from nibble s/8 of byte s%8, high 2 bits from bit
    // pair s/4 of byte 8 + s%4; stored with a +32 bias.
    float factor[16];
    for (int s = 0; s < 16; ++s) {
      const int low = (packed_scales[s % 8] >> (4 * (s / 8))) & 0x0F;
      const int high = (packed_scales[8 + s % 4] >> (2 * (s / 4))) & 0x03;
      factor[s] = d * to_float((low | (high << 4)) - 32);
    }
    for (int half = 0; half < 2; ++half) {
      for (int shift_index = 0; shift_index < 4; ++shift_index) {
        const int group = half * 4 + shift_index;  // value index / 32 = hmask bit
        for (int sub = 0; sub < 2; ++sub) {
          const int s = group * 2 + sub;
          const uint8_t* q = qs + half * 32 + sub * 16;
          const uint8_t* high = hmask + sub * 16;
          float* y = out + s * 16;
          for (int k = 0; k < 16; ++k) {
            const int low = (q[k] >> (2 * shift_index)) & 3;
            const int offset = (((high[k] >> group) & 1) ^ 1) << 2;  // 4 when the bit is clear
            y[k] = factor[s] * to_float(low - offset);
          }
        }
      }
    }
  }
}

// The 12-byte scale/min packing shared by Q4_K and Q5_K (get_scale_min_k4).
void unpack_k4_scales(const uint8_t* packed, int scale[8], int min[8]) {
  for (int j = 0; j < 4; ++j) {
    scale[j] = packed[j] & 0x3F;
    min[j] = packed[j + 4] & 0x3F;
    scale[j + 4] = (packed[j + 8] & 0x0F) | ((packed[j] >> 6) << 4);
    min[j + 4] = (packed[j + 8] >> 4) | ((packed[j + 4] >> 6) << 4);
  }
}

void dequantize_q4_k(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 144, out += kQK_K) {
    const float d = load_fp16(block);
    const float dmin = load_fp16(block + 2);
    int scale[8];
    int min[8];
    unpack_k4_scales(block + 4, scale, min);
    const uint8_t* qs = block + 16;
    // Sub-block s = 2 * chunk + nibble holds nibble `nibble` of qs[chunk * 32 + k].
    for (int s = 0; s < 8; ++s) {
      const float factor = d * to_float(scale[s]);
      const float offset = dmin * to_float(min[s]);
      const uint8_t* q = qs + (s / 2) * 32;
      const int shift = 4 * (s % 2);
      float* y = out + s * 32;
      for (int k = 0; k < 32; ++k) y[k] = factor * to_float((q[k] >> shift) & 0x0F) - offset;
    }
  }
}

void dequantize_q5_k(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 176, out += kQK_K) {
    const float d = load_fp16(block);
    const float dmin = load_fp16(block + 2);
    int scale[8];
    int min[8];
    unpack_k4_scales(block + 4, scale, min);
    const uint8_t* qh = block + 16;
    const uint8_t* qs = block + 48;
    for (int s = 0; s < 8; ++s) {
      const float factor = d * to_float(scale[s]);
      const float offset = dmin * to_float(min[s]);
      const uint8_t* q = qs + (s / 2) * 32;
      const int shift = 4 * (s % 2);
      float* y = out + s * 32;
      for (int k = 0; k < 32; ++k) {
        const int value = ((q[k] >> shift) & 0x0F) | (((qh[k] >> s) & 1) << 4);
        y[k] = factor * to_float(value) - offset;
      }
    }
  }
}

void dequantize_q6_k(const uint8_t* block, int64_t n_blocks, float* out) {
  for (int64_t b = 0; b < n_blocks; ++b, block += 210, out += kQK_K) {
    const uint8_t* ql = block;
    const uint8_t* qh = block + 128;
    const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
    const float d = load_fp16(block + 208);
    float factor[16];
    for (int s = 0; s < 16; ++s) factor[s] = d * to_float(scales[s]);
    // Each 128-value half: value 32*g + k takes nibble g/2 of ql[k + 32*(g%2)]
    // and bit pair g of qh[k].
    for (int half = 0; half < 2; ++half) {
      const uint8_t* ql_half = ql + half * 64;
      const uint8_t* qh_half = qh + half * 32;
      for (int group = 0; group < 4; ++group) {
        const int low_shift = 4 * (group / 2);
        for (int sub = 0; sub < 2; ++sub) {
          const int s = half * 8 + group * 2 + sub;
          const uint8_t* low_bytes = ql_half + 32 * (group % 2) + 16 * sub;
          const uint8_t* high_bytes = qh_half + 16 * sub;
          float* y = out + s * 16;
          for (int k = 0; k < 16; ++k) {
            const int value = ((low_bytes[k] >> low_shift) & 0x0F) | (((high_bytes[k] >> (2 * group)) & 3) << 4);
            y[k] = factor[s] * to_float(value - 32);
          }
        }
      }
    }
  }
}

}  // namespace

void dequantize(DType type, const uint8_t* src, int64_t n, float* out) {
  const DTypeTraits& traits = dtype_traits(type);
  if (n < 0 || n % traits.block_elements != 0) {
    throw bad_file("dequantize: " + std::to_string(n) + " values is not a whole number of " + std::string(traits.name) +
                   " blocks of " + std::to_string(traits.block_elements));
  }
  const int64_t n_blocks = n / traits.block_elements;
  switch (type) {
    case DType::F32: return dequantize_f32(src, n, out);
    case DType::F16: return dequantize_f16(src, n, out);
    case DType::BF16: return dequantize_bf16(src, n, out);
    case DType::Q4_0: return dequantize_q4_0(src, n_blocks, out);
    case DType::Q4_1: return dequantize_q4_1(src, n_blocks, out);
    case DType::Q5_0: return dequantize_q5_0(src, n_blocks, out);
    case DType::Q5_1: return dequantize_q5_1(src, n_blocks, out);
    case DType::Q8_0: return dequantize_q8_0(src, n_blocks, out);
    case DType::Q2_K: return dequantize_q2_k(src, n_blocks, out);
    case DType::Q3_K: return dequantize_q3_k(src, n_blocks, out);
    case DType::Q4_K: return dequantize_q4_k(src, n_blocks, out);
    case DType::Q5_K: return dequantize_q5_k(src, n_blocks, out);
    case DType::Q6_K: return dequantize_q6_k(src, n_blocks, out);
  }
}

void dequantize_rows(const TensorView& tensor, int64_t first_row, int64_t n_rows, float* out) {
  const int64_t total_rows = tensor.rows();
  if (first_row < 0 || n_rows < 0 || first_row > total_rows || n_rows > total_rows - first_row) {
    throw bad_file("tensor '" + tensor.name + "' " + tensor.shape_string() + ": cannot read " + std::to_string(n_rows) +
                   " rows starting at row " + std::to_string(first_row) + "; it has " + std::to_string(total_rows) +
                   " rows");
  }
  const int64_t row_length = tensor.row_length();
  const int64_t block_elements = dtype_traits(tensor.type).block_elements;
  if (row_length % block_elements != 0) {
    throw bad_file("tensor '" + tensor.name + "' " + tensor.shape_string() + ": row length " +
                   std::to_string(row_length) + " is not a multiple of the " + std::string(dtype_name(tensor.type)) +
                   " block size " + std::to_string(block_elements));
  }
  const int64_t row_bytes = tensor.row_bytes();
  // The readers validate nbytes against the shape; this guards views built by hand.
  if ((first_row + n_rows) * row_bytes > tensor.nbytes) {
    throw bad_file("tensor '" + tensor.name + "' " + tensor.shape_string() + ": rows up to " +
                   std::to_string(first_row + n_rows) + " need " + std::to_string((first_row + n_rows) * row_bytes) +
                   " bytes but the view has " + std::to_string(tensor.nbytes));
  }
  if (n_rows == 0) return;
  dequantize(tensor.type, tensor.data + first_row * row_bytes, n_rows * row_length, out);
}

int64_t TensorView::elements() const {
  int64_t count = 1;
  for (int64_t dim : shape) count *= dim;
  return count;
}

std::string TensorView::shape_string() const {
  std::string text = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) text += ", ";
    text += std::to_string(shape[i]);
  }
  return text + "]";
}

}  // namespace neuronlens

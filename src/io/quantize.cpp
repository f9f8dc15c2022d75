// The reference quantisers of ggml-quants.c (quantize_row_q4_0_ref and its
// siblings), which gguf-py's quants.py ports to NumPy. The arithmetic is
// float32 throughout and must not be contracted into fused multiply-adds
// (CMakeLists.txt builds this file with -ffp-contract=off): a fused x*id + 8.5
// rounds once where the reference rounds twice, and a code can land on the
// other side of .5.
#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

#include "io/half.h"
#include "neuronlens/error.h"
#include "neuronlens/quantize.h"

namespace neuronlens {
namespace {

constexpr int kQK = 32;

void store_fp16(uint8_t* p, float value) {
  const uint16_t bits = fp32_to_fp16(value);
  std::memcpy(p, &bits, sizeof bits);
}

// The signed value of largest magnitude (the first, on ties): the scale's
// sign comes from it, so that the extreme value maps to code 0 exactly.
float signed_absmax(const float* x) {
  float amax = 0.0f, max = 0.0f;
  for (int i = 0; i < kQK; ++i) {
    if (amax < std::fabs(x[i])) {
      amax = std::fabs(x[i]);
      max = x[i];
    }
  }
  return max;
}

void min_max(const float* x, float& lo, float& hi) {
  lo = x[0];
  hi = x[0];
  for (int i = 1; i < kQK; ++i) {
    lo = std::min(lo, x[i]);
    hi = std::max(hi, x[i]);
  }
}

float inverse_or_zero(float d) { return d != 0.0f ? 1.0f / d : 0.0f; }

// Low nibbles hold codes 0..15, high nibbles codes 16..31 (dequantize.cpp).
void pack_nibbles(const int* codes, uint8_t* qs) {
  for (int j = 0; j < kQK / 2; ++j) qs[j] = static_cast<uint8_t>((codes[j] & 0x0F) | ((codes[j + kQK / 2] & 0x0F) << 4));
}

// Bit i of qh is the 5th bit of code i.
void pack_fifth_bits(const int* codes, uint8_t* qh_bytes) {
  uint32_t qh = 0;
  for (int i = 0; i < kQK; ++i) qh |= static_cast<uint32_t>((codes[i] >> 4) & 1) << i;
  std::memcpy(qh_bytes, &qh, sizeof qh);
}

// Block layouts: Q4_0 d | qs[16]; Q4_1 d | m | qs[16]; Q5_0 d | qh[4] | qs[16];
// Q5_1 d | m | qh[4] | qs[16]; Q8_0 d | qs[32] (d and m fp16).
void quantize_q4_0(const float* x, uint8_t* block) {
  const float d = signed_absmax(x) / -8.0f;
  const float id = inverse_or_zero(d);
  int codes[kQK];
  for (int i = 0; i < kQK; ++i) codes[i] = std::min(15, static_cast<int>(x[i] * id + 8.5f));
  store_fp16(block, d);
  pack_nibbles(codes, block + 2);
}

void quantize_q4_1(const float* x, uint8_t* block) {
  float lo, hi;
  min_max(x, lo, hi);
  const float d = (hi - lo) / 15.0f;
  const float id = inverse_or_zero(d);
  int codes[kQK];
  for (int i = 0; i < kQK; ++i) codes[i] = std::min(15, static_cast<int>((x[i] - lo) * id + 0.5f));
  store_fp16(block, d);
  store_fp16(block + 2, lo);
  pack_nibbles(codes, block + 4);
}

void quantize_q5_0(const float* x, uint8_t* block) {
  const float d = signed_absmax(x) / -16.0f;
  const float id = inverse_or_zero(d);
  int codes[kQK];
  for (int i = 0; i < kQK; ++i) codes[i] = std::min(31, static_cast<int>(x[i] * id + 16.5f));
  store_fp16(block, d);
  pack_fifth_bits(codes, block + 2);
  pack_nibbles(codes, block + 6);
}

void quantize_q5_1(const float* x, uint8_t* block) {
  float lo, hi;
  min_max(x, lo, hi);
  const float d = (hi - lo) / 31.0f;
  const float id = inverse_or_zero(d);
  int codes[kQK];
  for (int i = 0; i < kQK; ++i) codes[i] = std::min(31, static_cast<int>((x[i] - lo) * id + 0.5f));
  store_fp16(block, d);
  store_fp16(block + 2, lo);
  pack_fifth_bits(codes, block + 4);
  pack_nibbles(codes, block + 8);
}

void quantize_q8_0(const float* x, uint8_t* block) {
  float amax = 0.0f;
  for (int i = 0; i < kQK; ++i) amax = std::max(amax, std::fabs(x[i]));
  const float d = amax / 127.0f;
  const float id = inverse_or_zero(d);
  store_fp16(block, d);
  for (int i = 0; i < kQK; ++i) block[2 + i] = static_cast<uint8_t>(static_cast<int8_t>(std::round(x[i] * id)));
}

template <typename QuantizeBlock>
void quantize_blocks(const float* values, int64_t n, uint8_t* out, int64_t block_bytes, QuantizeBlock quantize_block) {
  for (int64_t b = 0; b < n / kQK; ++b) quantize_block(values + b * kQK, out + b * block_bytes);
}

}  // namespace

bool can_quantize(DType type) {
  switch (type) {
    case DType::F32: case DType::F16: case DType::BF16:
    case DType::Q4_0: case DType::Q4_1: case DType::Q5_0: case DType::Q5_1: case DType::Q8_0:
      return true;
    default:
      return false;
  }
}

void quantize(DType type, const float* values, int64_t n, uint8_t* out) {
  if (!can_quantize(type)) {
    throw bad_input("cannot quantise to " + std::string(dtype_name(type)) +
                    " (neuronlens writes F32, F16, BF16, Q4_0, Q4_1, Q5_0, Q5_1 and Q8_0)");
  }
  const DTypeTraits& traits = dtype_traits(type);
  if (n < 0 || n % traits.block_elements != 0) {
    throw bad_input(std::to_string(n) + " values are not whole " + std::string(traits.name) + " blocks of " +
                    std::to_string(traits.block_elements));
  }
  // The block rules' float-to-int conversions are defined for finite values only.
  for (int64_t i = 0; i < n; ++i) {
    if (!std::isfinite(values[i])) throw bad_input("value " + std::to_string(i) + " to quantise is not finite");
  }
  switch (type) {
    case DType::F32:
      std::memcpy(out, values, static_cast<size_t>(n) * sizeof(float));
      return;
    case DType::F16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t bits = fp32_to_fp16(values[i]);
        std::memcpy(out + 2 * i, &bits, sizeof bits);
      }
      return;
    case DType::BF16:
      for (int64_t i = 0; i < n; ++i) {
        const uint16_t bits = fp32_to_bf16(values[i]);
        std::memcpy(out + 2 * i, &bits, sizeof bits);
      }
      return;
    case DType::Q4_0: return quantize_blocks(values, n, out, traits.block_bytes, quantize_q4_0);
    case DType::Q4_1: return quantize_blocks(values, n, out, traits.block_bytes, quantize_q4_1);
    case DType::Q5_0: return quantize_blocks(values, n, out, traits.block_bytes, quantize_q5_0);
    case DType::Q5_1: return quantize_blocks(values, n, out, traits.block_bytes, quantize_q5_1);
    case DType::Q8_0: return quantize_blocks(values, n, out, traits.block_bytes, quantize_q8_0);
    default: break;
  }
}

}  // namespace neuronlens

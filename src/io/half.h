// IEEE binary16 (fp16) and bfloat16 <-> float32 conversions, done with integer
// bit manipulation so they are exact and identical on every CPU: widening is
// exact for all inputs (subnormals included; NaN payloads are kept, the way
// NumPy's float16 -> float32 cast keeps them), narrowing rounds to nearest,
// ties to even. No F16C intrinsics: VCVTPH2PS quiets signalling NaNs
// (0x7c01 -> 0x7fc02000) where NumPy, our reference, keeps them
// (-> 0x7f802000); the branch-free widening below vectorises well enough.
#pragma once

#include <bit>
#include <cstdint>

namespace neuronlens {

inline float fp16_to_fp32(uint16_t half_bits) {
  // Written without branches so loops over fp16 tensors vectorise.
  const uint32_t sign = static_cast<uint32_t>(half_bits & 0x8000u) << 16;
  const uint32_t exponent = half_bits & 0x7c00u;
  // Normal half: move exponent and mantissa into place and rebias by 127 - 15;
  // inf/NaN (all-ones exponent) get rebiased once more to reach 255, keeping
  // the NaN payload.
  uint32_t bits = (static_cast<uint32_t>(half_bits & 0x7fffu) << 13) + ((127u - 15u) << 23);
  const uint32_t inf_or_nan_mask = 0u - static_cast<uint32_t>(exponent == 0x7c00u);
  bits += inf_or_nan_mask & ((127u - 15u) << 23);
  // Zero or subnormal half: the value is mantissa * 2^-24, which int -> float
  // and a power-of-two scale compute exactly (the result is a normal float32).
  const float small_value = static_cast<float>(half_bits & 0x3ffu) * 0x1p-24f;
  const uint32_t small_mask = 0u - static_cast<uint32_t>(exponent == 0);
  bits = (bits & ~small_mask) | (std::bit_cast<uint32_t>(small_value) & small_mask);
  return std::bit_cast<float>(bits | sign);
}

inline uint16_t fp32_to_fp16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint32_t sign = (bits >> 16) & 0x8000u;
  const uint32_t magnitude = bits & 0x7fffffffu;
  if (magnitude > 0x7f800000u) {
    // NaN: keep the top payload bits (as NumPy does) but never produce inf.
    uint32_t payload = (magnitude >> 13) & 0x3ffu;
    if (payload == 0) payload = 1;
    return static_cast<uint16_t>(sign | 0x7c00u | payload);
  }
  // 65520 is halfway between 65504 (largest half) and 65536; the tie goes to
  // the even neighbour, which is 65536 = inf.
  if (magnitude >= 0x477ff000u) return static_cast<uint16_t>(sign | 0x7c00u);
  if (magnitude < 0x38800000u) {  // below 2^-14: subnormal half (or zero)
    // 2^-25 is halfway between 0 and the smallest subnormal; ties go to 0.
    if (magnitude <= 0x33000000u) return static_cast<uint16_t>(sign);
    const uint32_t exponent = magnitude >> 23;                       // 102..112
    const uint32_t significand = (magnitude & 0x7fffffu) | 0x800000u;
    const uint32_t shift = 126 - exponent;                           // 14..24
    uint32_t rounded = significand >> shift;
    const uint32_t remainder = significand & ((1u << shift) - 1);
    const uint32_t halfway = 1u << (shift - 1);
    if (remainder > halfway || (remainder == halfway && (rounded & 1u))) ++rounded;
    return static_cast<uint16_t>(sign | rounded);  // may carry into the smallest normal
  }
  // Normal half: rebias the exponent, round the 13 dropped mantissa bits. A
  // carry out of the mantissa correctly bumps the exponent.
  uint32_t rounded = (magnitude - ((127u - 15u) << 23)) >> 13;
  const uint32_t remainder = magnitude & 0x1fffu;
  if (remainder > 0x1000u || (remainder == 0x1000u && (rounded & 1u))) ++rounded;
  return static_cast<uint16_t>(sign | rounded);
}

inline float bf16_to_fp32(uint16_t bf16_bits) {
  return std::bit_cast<float>(static_cast<uint32_t>(bf16_bits) << 16);
}

// Same as ggml_compute_fp32_to_bf16 (and gguf-py's BF16.quantize_blocks):
// NaNs are forced quiet, everything else rounds to nearest even.
inline uint16_t fp32_to_bf16(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  if ((bits & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((bits >> 16) | 64u);
  return static_cast<uint16_t>((bits + (0x7fffu + ((bits >> 16) & 1u))) >> 16);
}

}  // namespace neuronlens

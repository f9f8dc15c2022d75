// The integers of one Q4_0, Q4_1, Q5_0, Q5_1 or Q8_0 block (the layouts in
// block_matvec.h), in plain C++: what both the float-activation kernels
// (block_matvec_portable.cpp) and the 8-bit-activation ones (block_q8.cpp)
// multiply.
#pragma once

#include <cstdint>
#include <cstring>

#include "backends/cpu/block_matvec_kernels.h"

namespace neuronlens::cpu::portable {

// What dequantisation subtracts from the stored unsigned value (Q4_0: 8,
// Q5_0: 16), 0 where the stored value is the integer itself.
constexpr int value_bias(BlockFormat format) {
  return format == BlockFormat::Q4_0 ? 8 : format == BlockFormat::Q5_0 ? 16 : 0;
}

// q[i], the integer dequantisation multiplies by d, for value i < 32.
template <BlockFormat kFormat>
void block_integers(const uint8_t* block, int q[32]) {
  static_assert(!is_plain(kFormat));
  if constexpr (kFormat == BlockFormat::Q8_0) {
    for (int i = 0; i < 32; ++i) q[i] = static_cast<int8_t>(block[2 + i]);
  } else {
    constexpr bool kFiveBits = kFormat == BlockFormat::Q5_0 || kFormat == BlockFormat::Q5_1;
    constexpr int kQsOffset = (has_offset(kFormat) ? 4 : 2) + (kFiveBits ? 4 : 0);
    constexpr int kBias = value_bias(kFormat);
    const uint8_t* qs = block + kQsOffset;
    uint32_t qh = 0;  // the 5th bits, none for Q4_0/Q4_1
    if constexpr (kFiveBits) std::memcpy(&qh, qs - 4, sizeof qh);
    for (int k = 0; k < 16; ++k) {
      q[k] = ((qs[k] & 0x0F) | static_cast<int>((qh >> k) & 1) << 4) - kBias;
      q[k + 16] = ((qs[k] >> 4) | static_cast<int>((qh >> (k + 16)) & 1) << 4) - kBias;
    }
  }
}

// Eight lanes summed as the AVX2 kernels sum an _mm256: halves, then pairs,
// then the last two.
inline float horizontal_sum(const float lanes[8]) {
  float s[4];
  for (int l = 0; l < 4; ++l) s[l] = lanes[l] + lanes[l + 4];
  return (s[0] + s[2]) + (s[1] + s[3]);
}

}  // namespace neuronlens::cpu::portable

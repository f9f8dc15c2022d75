// SHA-256 on the x86 SHA extensions (sha256_blocks.h). sha256rnds2 runs two
// rounds on the working variables held as {a, b, e, f} and {c, d, g, h};
// sha256msg1 and sha256msg2 extend the message schedule four words at a time.
// Compiled for every x86-64 CPU by target, called only where
// cpu_has_sha_ni() says the CPU has the instructions.
#include "io/sha256_blocks.h"

#if defined(__x86_64__)
#include <cpuid.h>
#include <immintrin.h>

namespace neuronlens::sha256_detail {

bool cpu_has_sha_ni() {
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (b & (1u << 29));  // CPUID.(7,0):EBX.SHA
}

__attribute__((target("sha,sse4.1,ssse3"))) void compress_sha_ni(uint32_t* state, const uint8_t* data,
                                                                 size_t count) {
  // Big-endian message words: reverse the bytes of each 32-bit lane.
  const __m128i byte_swap = _mm_set_epi64x(0x0c0d0e0f08090a0bLL, 0x0405060700010203LL);
  // {a, b, c, d} and {e, f, g, h} (lane 0 first) into {f, e, b, a} and
  // {h, g, d, c}, the lane order sha256rnds2 reads (a in the top lane).
  const __m128i abcd = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state)), 0xB1);
  const __m128i efgh = _mm_shuffle_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(state + 4)), 0x1B);
  __m128i abef = _mm_alignr_epi8(abcd, efgh, 8);
  __m128i cdgh = _mm_blend_epi16(efgh, abcd, 0xF0);

  for (; count > 0; --count, data += 64) {
    const __m128i abef_before = abef;
    const __m128i cdgh_before = cdgh;
    // w[4g .. 4g + 3] of the schedule, a ring of the last four groups.
    __m128i w[4];
    for (int g = 0; g < 16; ++g) {
      if (g < 4) {
        w[g] = _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i*>(data + 16 * g)), byte_swap);
      } else {
        // w[i] = w[i-16] + σ0(w[i-15]) + w[i-7] + σ1(w[i-2]), for i = 4g .. 4g + 3.
        __m128i next = _mm_sha256msg1_epu32(w[g % 4], w[(g - 3) % 4]);
        next = _mm_add_epi32(next, _mm_alignr_epi8(w[(g - 1) % 4], w[(g - 2) % 4], 4));
        w[g % 4] = _mm_sha256msg2_epu32(next, w[(g - 1) % 4]);
      }
      __m128i message =
          _mm_add_epi32(w[g % 4], _mm_loadu_si128(reinterpret_cast<const __m128i*>(kRoundConstants + 4 * g)));
      cdgh = _mm_sha256rnds2_epu32(cdgh, abef, message);  // rounds 4g, 4g + 1
      message = _mm_shuffle_epi32(message, 0x0E);
      abef = _mm_sha256rnds2_epu32(abef, cdgh, message);  // rounds 4g + 2, 4g + 3
    }
    abef = _mm_add_epi32(abef, abef_before);
    cdgh = _mm_add_epi32(cdgh, cdgh_before);
  }

  const __m128i feba = _mm_shuffle_epi32(abef, 0x1B);
  const __m128i dchg = _mm_shuffle_epi32(cdgh, 0xB1);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state), _mm_blend_epi16(feba, dchg, 0xF0));  // {a, b, c, d}
  _mm_storeu_si128(reinterpret_cast<__m128i*>(state + 4), _mm_alignr_epi8(dchg, feba, 8));  // {e, f, g, h}
}

}  // namespace neuronlens::sha256_detail

#else

namespace neuronlens::sha256_detail {
bool cpu_has_sha_ni() { return false; }
}  // namespace neuronlens::sha256_detail

#endif

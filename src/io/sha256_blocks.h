// The compression function of SHA-256 over whole 64-byte blocks, in two
// implementations with the same results: plain C++ (every CPU) and the x86
// SHA extensions (SHA-NI: Intel since Goldmont and Ice Lake, every AMD Zen),
// which hash a multi-gigabyte model file several times as fast (figures in
// bench/README.md, "The head atlas"). Sha256 picks one once per
// process; the tests call both.
#pragma once

#include <cstddef>
#include <cstdint>

namespace neuronlens::sha256_detail {

// The 64 round constants, K[0..63] of FIPS 180-4.
extern const uint32_t kRoundConstants[64];

// state [8] (a..h) updated by `count` blocks of 64 bytes at `data`.
void compress_portable(uint32_t* state, const uint8_t* data, size_t count);

// Whether this CPU has the SHA extensions (CPUID.(7,0):EBX bit 29).
bool cpu_has_sha_ni();

// The same as compress_portable on the SHA extensions; call only where
// cpu_has_sha_ni(). Absent (a link error) off x86-64.
void compress_sha_ni(uint32_t* state, const uint8_t* data, size_t count);

using CompressFn = void (*)(uint32_t* state, const uint8_t* data, size_t count);

// The fastest of the two this CPU runs.
CompressFn best_compress();

}  // namespace neuronlens::sha256_detail

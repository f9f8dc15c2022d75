// The micro-kernels of the decode's product C = A · B^T, A a block of
// vectors, B the LM head, both packed into panels (logit_panels.h). One set
// per instruction set and vector width, all instantiated from one template
// (logit_kernels_impl.h), so the source of a width this CPU lacks runs here
// too, at that width, in the portable sets.
//
// A set's tile is mr vectors x nr tokens, nr = two vectors of W lanes:
//   portable8, avx2     W = 8:  6 x 16 (twelve 8-lane accumulators)
//   portable16, avx512  W = 16: 12 x 32 (twenty-four 16-lane accumulators)
//   avx512bf16          W = 16: 12 x 32, bf16 pairs by vdpbf16ps
//
// Every set has a float32 product and a bf16 one. The bf16 product takes
// operands rounded to bf16 and stored in pairs along k (one 32-bit word: the
// even element in the low half, as vdpbf16ps reads them) and accumulates in
// float32. Where the CPU has no bf16 dot-product unit it is emulated by two
// float32 FMAs per pair, odd element first, as vdpbf16ps adds them: a
// product of two bf16 values is exact in float32, so each step rounds once,
// as the instruction does, and the emulated products equal the native ones
// (the operands are never subnormal: to_bf16 flushes them, as the
// instruction would).
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace neuronlens::cpu {

enum class LogitKernelSet { Portable8, Portable16, Avx2, Avx512, Avx512Bf16 };

struct LogitKernels {
  LogitKernelSet set;
  std::string_view name;  // "portable8", "portable16", "avx2", "avx512", "avx512bf16"
  int64_t mr, nr;         // vectors x tokens per tile
  bool native_bf16;       // the bf16 product runs on bf16 dot-product units
  // C[0 : a_panels * mr, 0 : b_panels * nr] = A · B^T, written (not added).
  // a: a_panels panels [k][mr]; b: b_panels consecutive panels [k][nr]; c has
  // leading dimension ldc >= b_panels * nr. Runs on the calling thread.
  void (*product_f32)(const float* a, int64_t a_panels, const float* b, int64_t b_panels, int64_t k, float* c,
                      int64_t ldc);
  // The same over bf16 pairs: a [a_panels][k2][mr], b [b_panels][k2][nr]
  // 32-bit words, k2 = ceil(k / 2).
  void (*product_bf16)(const uint32_t* a, int64_t a_panels, const uint32_t* b, int64_t b_panels, int64_t k2,
                       float* c, int64_t ldc);
};

// Whether this CPU can run `set` (the portable ones: always).
bool can_run(LogitKernelSet set);
// The set's kernels; throws Error naming the missing CPU feature when this
// CPU cannot run it.
const LogitKernels& logit_kernels(LogitKernelSet set);
// Every set, portable first; and the float32 set this CPU runs fastest.
const std::vector<LogitKernelSet>& all_logit_kernel_sets();
LogitKernelSet fastest_f32_kernel_set();
std::string_view logit_kernel_set_name(LogitKernelSet set);  // as LogitKernels::name
// What `set` needs of the CPU, in words ("AVX-512 F/BW/VL/DQ and FMA").
std::string_view required_cpu_features(LogitKernelSet set);

// Per-set tables, defined in logit_kernels_<set>.cpp.
const LogitKernels& portable8_logit_kernels();
const LogitKernels& portable16_logit_kernels();
#if defined(__x86_64__)
const LogitKernels& avx2_logit_kernels();
const LogitKernels& avx512_logit_kernels();
const LogitKernels& avx512_bf16_logit_kernels();
#endif

}  // namespace neuronlens::cpu

// The AVX-512 kernel set: 12 x 32 tiles, twenty-four 16-float accumulators
// (of 32 registers), two B loads and twelve broadcasts per step; bf16 pairs
// emulated (the avx512bf16 set, logit_kernels_avx512_bf16.cpp, has them on
// vdpbf16ps). Written for CPUs this project's machines may lack: the same
// template runs at this width in the portable16 set, which every test run
// checks.
#if defined(__x86_64__)
#include <immintrin.h>

#include "backends/cpu/logit_kernels.h"

// gcc takes the target as a pragma, clang as an attribute on every function
// defined until the pop.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,fma"))), apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,fma")
#endif
// GCC 12's AVX-512 shift and zero intrinsics start from an "undefined"
// register that -Wmaybe-uninitialized flags inside these headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "backends/cpu/logit_kernels_avx512_ops.h"
#include "backends/cpu/logit_kernels_impl.h"

namespace neuronlens::cpu {
namespace {

using Tiles = kernels::LogitTiles<Avx512Ops, 12>;

}  // namespace

// The table itself is made by code for any CPU: it is read before the CPU
// is checked.
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#pragma GCC diagnostic pop

const LogitKernels& avx512_logit_kernels() {
  static const LogitKernels k{LogitKernelSet::Avx512, "avx512", 12, Tiles::NR, false, Tiles::product_f32,
                              Tiles::product_bf16};
  return k;
}

}  // namespace neuronlens::cpu
#endif

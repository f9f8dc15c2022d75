// The avx512bf16 kernel set: the avx512 set's 12 x 32 tiles with bf16 pairs
// on vdpbf16ps (AVX512_BF16: Cooper Lake, Sapphire Rapids and later, Zen 4
// and later), 32 multiply-adds per instruction instead of 16. Its own file
// because the template must be compiled for the bf16 target to inline the
// instruction. The emulated pairs of the other sets give the same sums
// (logit_kernels.h), and the portable16 set runs this geometry everywhere.
#if defined(__x86_64__)
#include <immintrin.h>

#include "backends/cpu/logit_kernels.h"

// gcc takes the target as a pragma, clang as an attribute on every function
// defined until the pop.
#if defined(__clang__)
#pragma clang attribute push(__attribute__((target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma"))), \
                             apply_to = function)
#else
#pragma GCC push_options
#pragma GCC target("avx512f,avx512bw,avx512vl,avx512dq,avx512bf16,fma")
#endif
// GCC 12's AVX-512 shift and zero intrinsics start from an "undefined"
// register that -Wmaybe-uninitialized flags inside these headers.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include "backends/cpu/logit_kernels_avx512_ops.h"
#include "backends/cpu/logit_kernels_impl.h"

namespace neuronlens::cpu {
namespace {

struct Avx512Bf16Ops : Avx512Ops {
  static V dot2(V acc, P a, P b) { return _mm512_dpbf16_ps(acc, (__m512bh)a, (__m512bh)b); }
};
using Tiles = kernels::LogitTiles<Avx512Bf16Ops, 12>;

}  // namespace

// The table itself is made by code for any CPU: it is read before the CPU
// is checked.
#if defined(__clang__)
#pragma clang attribute pop
#else
#pragma GCC pop_options
#endif
#pragma GCC diagnostic pop

const LogitKernels& avx512_bf16_logit_kernels() {
  static const LogitKernels k{LogitKernelSet::Avx512Bf16, "avx512bf16", 12, Tiles::NR, true, Tiles::product_f32,
                              Tiles::product_bf16};
  return k;
}

}  // namespace neuronlens::cpu
#endif

// Which instruction set a CPU kernel runs on. Every kernel has a Portable
// path (plain C++) beside its SIMD ones, so that any CPU gets a tested
// kernel; tests force each path this CPU can run.
//
// A kernel without a version for a path runs the next narrower one that the
// path's CPUs all have: every CPU with Avx512Vnni has Avx2, so the block
// kernels and the K-quant unpacking and activation quantiser, which have no
// AVX-512 versions, run their AVX2 code there (each dispatch says so).
#pragma once

#include <string_view>

namespace neuronlens::cpu {

enum class KernelPath {
  Avx512Vnni,  // x86-64 with AVX-512 F, BW, VL and VNNI, and everything Avx2 needs
  Avx2,        // x86-64 with AVX2, FMA and F16C
  Portable,    // plain C++, any CPU
};

// Whether a kernel that has only AVX2 and portable versions runs its AVX2
// code on `path` (Avx2 and Avx512Vnni: every CPU of the latter has AVX2).
constexpr bool runs_avx2_kernels(KernelPath path) { return path != KernelPath::Portable; }

// Whether this CPU can run `path`.
bool can_run(KernelPath path);
// The path kernels take by default: the fastest this CPU can run, unless the
// environment variable NEURONLENS_KERNEL_PATH names another ("avx512vnni",
// "avx2" or "portable"), read once, here only, for benchmarks that time one
// path against another. Throws Error if it names an unknown path or one
// this CPU cannot run.
KernelPath best_kernel_path();
std::string_view kernel_path_name(KernelPath path);  // "avx512vnni", "avx2", "portable"
// Throws Error unless this CPU can run `path`: a caller that names a path
// this CPU lacks would otherwise die of an illegal instruction.
void require_path(KernelPath path, const char* function);

}  // namespace neuronlens::cpu

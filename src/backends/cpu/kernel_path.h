// Which instruction set a CPU kernel runs on. Every kernel has a Portable
// path (plain C++) beside its SIMD ones, so that any CPU gets a tested
// kernel; tests force each path this CPU can run.
#pragma once

#include <string_view>

namespace neuronlens::cpu {

enum class KernelPath {
  Avx2,      // x86-64 with AVX2, FMA and F16C
  Portable,  // plain C++, any CPU
};

// Whether this CPU can run `path`.
bool can_run(KernelPath path);
// The fastest path this CPU can run.
KernelPath best_kernel_path();
std::string_view kernel_path_name(KernelPath path);  // "avx2", "portable"
// Throws Error unless this CPU can run `path`: a caller that names a path
// this CPU lacks would otherwise die of an illegal instruction.
void require_path(KernelPath path, const char* function);

}  // namespace neuronlens::cpu

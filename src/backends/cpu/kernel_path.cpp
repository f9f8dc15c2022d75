#include "backends/cpu/kernel_path.h"

#include <string>

#include "backends/cpu/cpu_features.h"
#include "neuronlens/error.h"

namespace neuronlens::cpu {

bool can_run(KernelPath path) {
  switch (path) {
    case KernelPath::Avx2: {
#if defined(__x86_64__)
      static const bool have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && cpu_has_f16c();
      return have;
#else
      return false;
#endif
    }
    case KernelPath::Portable: return true;
  }
  return false;
}

KernelPath best_kernel_path() {
  static const KernelPath best = can_run(KernelPath::Avx2) ? KernelPath::Avx2 : KernelPath::Portable;
  return best;
}

std::string_view kernel_path_name(KernelPath path) {
  switch (path) {
    case KernelPath::Avx2: return "avx2";
    case KernelPath::Portable: return "portable";
  }
  return "?";
}

void require_path(KernelPath path, const char* function) {
  if (can_run(path)) return;
  throw bad_input(std::string(function) + ": the " + std::string(kernel_path_name(path)) +
                  " kernels need an x86-64 CPU with AVX2, FMA and F16C, which this is not");
}

}  // namespace neuronlens::cpu

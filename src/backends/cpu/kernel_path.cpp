#include "backends/cpu/kernel_path.h"

#include <cstdlib>
#include <string>

#include "backends/cpu/cpu_features.h"
#include "neuronlens/error.h"

namespace neuronlens::cpu {
namespace {

KernelPath fastest_path() {
  if (can_run(KernelPath::Avx512Vnni)) return KernelPath::Avx512Vnni;
  if (can_run(KernelPath::Avx2)) return KernelPath::Avx2;
  return KernelPath::Portable;
}

// NEURONLENS_KERNEL_PATH, or the fastest path where it is unset or empty.
KernelPath path_from_environment() {
  const char* name = std::getenv("NEURONLENS_KERNEL_PATH");
  if (name == nullptr || *name == '\0') return fastest_path();
  for (const KernelPath path : {KernelPath::Avx512Vnni, KernelPath::Avx2, KernelPath::Portable}) {
    if (kernel_path_name(path) != name) continue;
    require_path(path, "NEURONLENS_KERNEL_PATH");
    return path;
  }
  throw bad_input(std::string("NEURONLENS_KERNEL_PATH=") + name + ": not a kernel path (avx512vnni, avx2, portable)");
}

}  // namespace

bool can_run(KernelPath path) {
  switch (path) {
    case KernelPath::Avx512Vnni: {
#if defined(__x86_64__)
      static const bool have = can_run(KernelPath::Avx2) && __builtin_cpu_supports("avx512f") &&
                               __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                               cpu_has_avx512_vnni();
      return have;
#else
      return false;
#endif
    }
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
  static const KernelPath best = path_from_environment();
  return best;
}

std::string_view kernel_path_name(KernelPath path) {
  switch (path) {
    case KernelPath::Avx512Vnni: return "avx512vnni";
    case KernelPath::Avx2: return "avx2";
    case KernelPath::Portable: return "portable";
  }
  return "?";
}

void require_path(KernelPath path, const char* function) {
  if (can_run(path)) return;
  const char* needs =
      path == KernelPath::Avx512Vnni ? "AVX-512 F, BW, VL and VNNI besides AVX2, FMA and F16C" : "AVX2, FMA and F16C";
  throw bad_input(std::string(function) + ": the " + std::string(kernel_path_name(path)) +
                  " kernels need an x86-64 CPU with " + needs + ", which this is not");
}

}  // namespace neuronlens::cpu

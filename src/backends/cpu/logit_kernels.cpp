#include "backends/cpu/logit_kernels.h"

#include <string>

#include "backends/cpu/cpu_features.h"
#include "neuronlens/error.h"

namespace neuronlens::cpu {

bool can_run(LogitKernelSet set) {
  switch (set) {
    case LogitKernelSet::Portable8:
    case LogitKernelSet::Portable16: return true;
#if defined(__x86_64__)
    case LogitKernelSet::Avx2: {
      static const bool have = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
      return have;
    }
    case LogitKernelSet::Avx512: {
      static const bool have = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                               __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                               __builtin_cpu_supports("fma");
      return have;
    }
    case LogitKernelSet::Avx512Bf16: {
      static const bool have = can_run(LogitKernelSet::Avx512) && cpu_has_avx512_bf16();
      return have;
    }
#else
    default: return false;
#endif
  }
  return false;
}

std::string_view logit_kernel_set_name(LogitKernelSet set) {
  switch (set) {
    case LogitKernelSet::Portable8: return "portable8";
    case LogitKernelSet::Portable16: return "portable16";
    case LogitKernelSet::Avx2: return "avx2";
    case LogitKernelSet::Avx512: return "avx512";
    case LogitKernelSet::Avx512Bf16: return "avx512bf16";
  }
  return "?";
}

std::string_view required_cpu_features(LogitKernelSet set) {
  switch (set) {
    case LogitKernelSet::Portable8:
    case LogitKernelSet::Portable16: return "nothing";
    case LogitKernelSet::Avx2: return "x86-64 AVX2 and FMA";
    case LogitKernelSet::Avx512: return "x86-64 AVX-512 F/BW/VL/DQ and FMA";
    case LogitKernelSet::Avx512Bf16: return "x86-64 AVX-512 F/BW/VL/DQ, FMA and AVX512_BF16 (vdpbf16ps)";
  }
  return "?";
}

const LogitKernels& logit_kernels(LogitKernelSet set) {
  if (!can_run(set)) {
    throw bad_input("this CPU cannot run the " + std::string(logit_kernel_set_name(set)) +
                    " decode kernels: they need " + std::string(required_cpu_features(set)));
  }
  switch (set) {
    case LogitKernelSet::Portable8: return portable8_logit_kernels();
    case LogitKernelSet::Portable16: return portable16_logit_kernels();
#if defined(__x86_64__)
    case LogitKernelSet::Avx2: return avx2_logit_kernels();
    case LogitKernelSet::Avx512: return avx512_logit_kernels();
    case LogitKernelSet::Avx512Bf16: return avx512_bf16_logit_kernels();
#else
    default: break;
#endif
  }
  return portable8_logit_kernels();
}

const std::vector<LogitKernelSet>& all_logit_kernel_sets() {
  static const std::vector<LogitKernelSet> sets{LogitKernelSet::Portable8, LogitKernelSet::Portable16,
                                                LogitKernelSet::Avx2, LogitKernelSet::Avx512,
                                                LogitKernelSet::Avx512Bf16};
  return sets;
}

LogitKernelSet fastest_f32_kernel_set() {
  if (can_run(LogitKernelSet::Avx512)) return LogitKernelSet::Avx512;
  if (can_run(LogitKernelSet::Avx2)) return LogitKernelSet::Avx2;
  return LogitKernelSet::Portable8;
}

}  // namespace neuronlens::cpu

// CPU features __builtin_cpu_supports does not name in every compiler we
// build with (clang 14 knows neither "f16c" nor "avx512bf16"; "avx512vnni"
// is read here too so that no compiler's list matters), read from
// CPUID directly. The OS-support half (XSAVE of the wider registers) is
// implied: these are only asked together with "avx2" or "avx512f", which
// __builtin_cpu_supports checks with the OS's register state.
#pragma once

#if defined(__x86_64__)
#include <cpuid.h>
#endif

namespace neuronlens::cpu {

inline bool cpu_has_f16c() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  return __get_cpuid(1, &a, &b, &c, &d) && (c & (1u << 29));  // CPUID.1:ECX.F16C
#else
  return false;
#endif
}

inline bool cpu_has_avx512_bf16() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 1, &a, &b, &c, &d) && (a & (1u << 5));  // CPUID.(7,1):EAX.AVX512_BF16
#else
  return false;
#endif
}

inline bool cpu_has_avx512_vnni() {
#if defined(__x86_64__)
  unsigned a, b, c, d;
  return __get_cpuid_count(7, 0, &a, &b, &c, &d) && (c & (1u << 11));  // CPUID.(7,0):ECX.AVX512_VNNI
#else
  return false;
#endif
}

}  // namespace neuronlens::cpu

// NEURONLENS_CPU_CLONES before a function with simple loops: the compiler
// builds it twice, for x86-64-v3 (AVX2, FMA) and for the baseline, and the
// loader picks the clone for this CPU. Rounding may differ between clones
// (wider vectors sum in another order), so not for bit-exact references.
// Off under AddressSanitizer, which does not support the ifunc it needs, and
// under clang (the fuzz build), whose version 14 cannot clone templates.
#pragma once

#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__) && !defined(__clang__)
#define NEURONLENS_CPU_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define NEURONLENS_CPU_CLONES
#endif

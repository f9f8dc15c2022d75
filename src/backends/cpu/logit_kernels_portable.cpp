// The portable kernel sets: the template's source at both widths the SIMD
// sets use, in plain C++, so that the 16-lane geometry of the AVX-512 sets
// is tested on any CPU.
#include "backends/cpu/logit_kernels.h"
#include "backends/cpu/logit_kernels_impl.h"

namespace neuronlens::cpu {
namespace {

// Types with internal linkage, so that these instantiations cannot be
// merged with another file's.
struct Ops8 : kernels::PortableOps<8> {};
struct Ops16 : kernels::PortableOps<16> {};
using Tiles8 = kernels::LogitTiles<Ops8, 6>;
using Tiles16 = kernels::LogitTiles<Ops16, 12>;

}  // namespace

const LogitKernels& portable8_logit_kernels() {
  static const LogitKernels k{LogitKernelSet::Portable8, "portable8", 6, Tiles8::NR, false, Tiles8::product_f32,
                              Tiles8::product_bf16};
  return k;
}

const LogitKernels& portable16_logit_kernels() {
  static const LogitKernels k{LogitKernelSet::Portable16, "portable16", 12, Tiles16::NR, false,
                              Tiles16::product_f32, Tiles16::product_bf16};
  return k;
}

}  // namespace neuronlens::cpu

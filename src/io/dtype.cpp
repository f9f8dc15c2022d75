// The table of tensor element types neuronlens can read, and the names of all
// ggml type ids (so an unsupported type in a file gets an error that names it).
// Block sizes follow ggml-common.h / gguf-py's GGML_QUANT_SIZES.
#include "neuronlens/dtype.h"

#include <string>

#include "neuronlens/error.h"

namespace neuronlens {

namespace {

constexpr int64_t kQK = 32;    // values per block of the "legacy" quants
constexpr int64_t kQK_K = 256; // values per super-block of the K-quants

constexpr DTypeTraits kF32{"F32", 1, 4};
constexpr DTypeTraits kF16{"F16", 1, 2};
constexpr DTypeTraits kBF16{"BF16", 1, 2};
constexpr DTypeTraits kQ4_0{"Q4_0", kQK, 2 + kQK / 2};
constexpr DTypeTraits kQ4_1{"Q4_1", kQK, 2 + 2 + kQK / 2};
constexpr DTypeTraits kQ5_0{"Q5_0", kQK, 2 + 4 + kQK / 2};
constexpr DTypeTraits kQ5_1{"Q5_1", kQK, 2 + 2 + 4 + kQK / 2};
constexpr DTypeTraits kQ8_0{"Q8_0", kQK, 2 + kQK};
constexpr DTypeTraits kQ2_K{"Q2_K", kQK_K, kQK_K / 16 + kQK_K / 4 + 2 + 2};
constexpr DTypeTraits kQ3_K{"Q3_K", kQK_K, kQK_K / 8 + kQK_K / 4 + 12 + 2};
constexpr DTypeTraits kQ4_K{"Q4_K", kQK_K, 2 + 2 + 12 + kQK_K / 2};
constexpr DTypeTraits kQ5_K{"Q5_K", kQK_K, 2 + 2 + 12 + kQK_K / 8 + kQK_K / 2};
constexpr DTypeTraits kQ6_K{"Q6_K", kQK_K, kQK_K / 2 + kQK_K / 4 + kQK_K / 16 + 2};

static_assert(kQ4_0.block_bytes == 18 && kQ4_1.block_bytes == 20 && kQ5_0.block_bytes == 22 &&
              kQ5_1.block_bytes == 24 && kQ8_0.block_bytes == 34);
static_assert(kQ2_K.block_bytes == 84 && kQ3_K.block_bytes == 110 && kQ4_K.block_bytes == 144 &&
              kQ5_K.block_bytes == 176 && kQ6_K.block_bytes == 210);

// Every ggml_type id up to the newest gguf-py knows; ids that were removed
// from ggml (4, 5, 31..33, 36..38) keep their historical names because old
// files can still carry them.
constexpr std::string_view kGgufTypeNames[] = {
    "F32",        // 0
    "F16",        // 1
    "Q4_0",       // 2
    "Q4_1",       // 3
    "Q4_2",       // 4 (removed from ggml)
    "Q4_3",       // 5 (removed from ggml)
    "Q5_0",       // 6
    "Q5_1",       // 7
    "Q8_0",       // 8
    "Q8_1",       // 9
    "Q2_K",       // 10
    "Q3_K",       // 11
    "Q4_K",       // 12
    "Q5_K",       // 13
    "Q6_K",       // 14
    "Q8_K",       // 15
    "IQ2_XXS",    // 16
    "IQ2_XS",     // 17
    "IQ3_XXS",    // 18
    "IQ1_S",      // 19
    "IQ4_NL",     // 20
    "IQ3_S",      // 21
    "IQ2_S",      // 22
    "IQ4_XS",     // 23
    "I8",         // 24
    "I16",        // 25
    "I32",        // 26
    "I64",        // 27
    "F64",        // 28
    "IQ1_M",      // 29
    "BF16",       // 30
    "Q4_0_4_4",   // 31 (removed from ggml)
    "Q4_0_4_8",   // 32 (removed from ggml)
    "Q4_0_8_8",   // 33 (removed from ggml)
    "TQ1_0",      // 34
    "TQ2_0",      // 35
    "IQ4_NL_4_4", // 36 (removed from ggml)
    "IQ4_NL_4_8", // 37 (removed from ggml)
    "IQ4_NL_8_8", // 38 (removed from ggml)
    "MXFP4",      // 39
    "NVFP4",      // 40
    "Q1_0",       // 41
};

}  // namespace

const DTypeTraits& dtype_traits(DType type) {
  switch (type) {
    case DType::F32: return kF32;
    case DType::F16: return kF16;
    case DType::BF16: return kBF16;
    case DType::Q4_0: return kQ4_0;
    case DType::Q4_1: return kQ4_1;
    case DType::Q5_0: return kQ5_0;
    case DType::Q5_1: return kQ5_1;
    case DType::Q8_0: return kQ8_0;
    case DType::Q2_K: return kQ2_K;
    case DType::Q3_K: return kQ3_K;
    case DType::Q4_K: return kQ4_K;
    case DType::Q5_K: return kQ5_K;
    case DType::Q6_K: return kQ6_K;
  }
  // Only reachable through a cast from an unchecked integer; throwing keeps a
  // bad id from turning into an out-of-bounds read later.
  throw internal_error("DType value " + std::to_string(static_cast<uint32_t>(type)) + " is not a supported type");
}

std::string_view dtype_name(DType type) { return dtype_traits(type).name; }

std::optional<DType> dtype_from_gguf_id(uint32_t id) {
  switch (id) {
    case 0: return DType::F32;
    case 1: return DType::F16;
    case 2: return DType::Q4_0;
    case 3: return DType::Q4_1;
    case 6: return DType::Q5_0;
    case 7: return DType::Q5_1;
    case 8: return DType::Q8_0;
    case 10: return DType::Q2_K;
    case 11: return DType::Q3_K;
    case 12: return DType::Q4_K;
    case 13: return DType::Q5_K;
    case 14: return DType::Q6_K;
    case 30: return DType::BF16;
    default: return std::nullopt;
  }
}

std::string_view gguf_type_id_name(uint32_t id) {
  constexpr size_t known = sizeof(kGgufTypeNames) / sizeof(kGgufTypeNames[0]);
  if (id < known) return kGgufTypeNames[id];
  return "unknown";
}

}  // namespace neuronlens

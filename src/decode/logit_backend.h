// The decode's backend seam: "multiply a block of vectors with the LM head
// and hand every tile of logits, with a bound on its error, to a sink that
// folds it into each vector's running softmax and top-k candidates".
//
// Everything a backend computes is checked against float64 afterwards: the
// sink (bounded_fold.h) keeps every token whose exact logit could be in the
// top k given the bound, and re-scores those in float64. So a backend may
// round however it likes as long as its bound holds; the bound is what makes
// the reported top-k ids those of the exact computation.
//
// Validation and the choice of a backend are in logit_backend.cpp; each
// backend is a file of its own (logit_backend_cpu.cpp today). A CUDA backend
// would be one more file, logit_backend_cuda.cpp, and a build option.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/decode.h"

namespace neuronlens::decode_detail {

// The LM head every backend reads: the dequantised float32 rows W_U [V, d]
// (the exact computation's operand), owned by the decoder.
struct LmHead {
  const float* rows = nullptr;
  int64_t vocab = 0;
  int64_t d = 0;
};

// Receives one block's logit tiles, from any thread (one sink per thread).
class TileSink {
 public:
  // Logits [cols] of tokens [v0, v0 + cols) for vector i of the block; each
  // within `bound` of the float64 dot product of the float32 operands.
  virtual void add(int64_t i, const float* logits, int64_t cols, int64_t v0, float bound) = 0;

 protected:
  ~TileSink() = default;
};

class LogitBackend {
 public:
  virtual ~LogitBackend() = default;
  // "cpu-avx2-fp32", "cpu-avx512bf16-bf16", ... (logit_backend_names()).
  virtual std::string_view name() const = 0;
  virtual Precision precision() const = 0;  // Exact or Bf16
  // Makes the head's form this backend multiplies (its panels: one more LM
  // head in float32, half of one in bf16), once; later calls return at
  // once. Without it fold() packs each tile as it goes, which suits a few
  // vectors (find, show) but not a map.
  virtual void prepare() const = 0;
  // Vectors per fold() call that this backend works in.
  virtual int64_t block_vectors() const = 0;
  // Multiplies vectors [n, d] by the whole head, tile by tile, into `sink`.
  // Called by several threads at once, each with its own block and sink.
  virtual void fold(const float* vectors, int64_t n, TileSink& sink) const = 0;
  // How `bound` is derived, in words, for the atlas's metadata.
  virtual std::string bound_definition() const = 0;
};

// The backend `settings` ask for: by name when settings.backend is set,
// else by precision (Auto: bf16 where the CPU has bf16 dot-product units,
// else exact; both on the widest SIMD this CPU runs). Throws Error for an
// unknown name or one this CPU cannot run, and for Precision::Bf16 on a CPU
// without bf16 units.
std::unique_ptr<LogitBackend> make_logit_backend(const LmHead& head, const DecodeSettings& settings);

// Defined with each backend.
std::unique_ptr<LogitBackend> make_cpu_logit_backend(const LmHead& head, std::string_view kernel_set,
                                                     Precision precision);
std::vector<DecodeBackendInfo> cpu_logit_backend_names();

}  // namespace neuronlens::decode_detail

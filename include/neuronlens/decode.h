// Decoding FFN neuron vectors through the model's final norm and LM head:
// p = softmax(W_U · norm(v)), W_U [V, d]. This is the method of Davies,
// "Decoding specialised feature neurons in LLMs with the final projection
// layer" (arXiv 2501.02688), for every FFN vector kind.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/model.h"
#include "neuronlens/neuron.h"

namespace neuronlens {

// How the bulk of the logits is computed. Whichever is used, every token
// whose exact logit could be in the top k (given a bound on the bulk's
// error, derived from the operands' norms: docs/precision.md) is re-scored
// in float64, so the reported top-k ids and logits are those of the exact
// computation; logsumexp and entropy take the exact values of those tokens
// and the bulk values of the rest, within the bounds each decoding reports.
enum class Precision {
  // Bf16 where the CPU has bf16 dot-product units (AVX512_BF16), else Exact.
  Auto,
  // float32 products (error bound about d * 2^-24 |v| |w|).
  Exact,
  // The head stored in bf16, the vectors rounded to bf16, float32
  // accumulation: twice the multiply-adds per instruction and half the
  // head's memory, for a wider bound (about 2^-8 |v| |w|) and so more tokens
  // re-scored. Needs AVX512_BF16; throws Error on a CPU without it.
  Bf16,
};
std::string_view precision_name(Precision precision);          // "auto", "exact", "bf16"
Precision precision_from_name(std::string_view name);          // throws Error

// What the vectors are decoded against: the LM head (the model's output
// path, with its final norm and soft-cap), or the token embedding, the input
// side (which tokens a direction reads: E · v, no norm, no cap).
enum class DecodeMatrix { LmHead, TokenEmbedding };

struct DecodeSettings {
  DecodeMatrix matrix = DecodeMatrix::LmHead;  // TokenEmbedding ignores `norm`
  NormMode norm = NormMode::Final;
  ReadNorm read_norm = ReadNorm::None;
  int top_k = 20;
  Precision precision = Precision::Auto;
  // Empty: chosen by `precision`. Otherwise one backend by name, e.g.
  // "cpu-avx2-fp32" or "cpu-avx2-bf16emu" (the bf16 method with its dot
  // products emulated exactly in float32, for CPUs without bf16 units);
  // decode_backend_names() lists them. For tests and benchmarks.
  std::string backend;
};

// Every decode backend: its name, precision, whether this CPU runs it and
// what it needs otherwise ("x86-64 AVX-512 ... AVX512_BF16").
struct DecodeBackendInfo {
  std::string name;
  Precision precision;
  bool runs_here;
  std::string needs;
};
std::vector<DecodeBackendInfo> decode_backend_names();

// The backend a decoder with `settings` uses, its precision (Exact or Bf16)
// and how its error bound is derived, without loading a head. Throws Error
// as the decoder would: an unknown backend, one this CPU cannot run, or
// Precision::Bf16 on a CPU without bf16 units.
struct DecodeBackendChoice {
  std::string name;
  Precision precision = Precision::Exact;
  std::string bound_definition;
};
DecodeBackendChoice choose_decode_backend(const DecodeSettings& settings);

// The decode a model's neurons get, in words, for the atlas's metadata: the
// final norm (Gemma's (1 + γ)), the final soft-cap, what a down column is
// decoded as and what an up/gate row is.
std::string decode_definition(const ModelConfig& config, const DecodeSettings& settings);

// Reads neuron vectors out of a model: [F, d] float32 rows, one per neuron.
// Down-projection columns are transposed into rows; in a family that
// RMS-norms the MLP output before the residual add (Gemma 2/3, OLMo 2) each
// becomes γ_post ⊙ w_down, the direction that reaches the residual stream.
// Up and gate rows are multiplied by the pre-norm weight with ReadNorm::Ffn.
void load_neuron_vectors(const Model& model, VectorKind kind, int64_t layer, std::vector<float>& out,
                         ReadNorm read_norm = ReadNorm::None);

// Holds the dequantised LM head and decodes blocks of vectors against it
// without materialising the [n, V] logits: the vocabulary is walked in tiles,
// each tile's logits come from the backend `settings` choose (see
// Precision) and are folded into a running (online) softmax and the top-k
// candidates, which are then re-scored in float64. Logits are the
// model's own: soft-capped where the family caps them (Gemma 2), so every
// logit it reports, counts or ranks is cap * tanh(z / cap).
class LmHeadDecoder {
 public:
  LmHeadDecoder(const Model& model, DecodeSettings settings);
  LmHeadDecoder(LmHeadDecoder&&) noexcept;
  LmHeadDecoder& operator=(LmHeadDecoder&&) noexcept;
  ~LmHeadDecoder();

  const DecodeSettings& settings() const;
  int64_t vocab_size() const;
  int64_t d_model() const;

  // Applies the chosen norm to n vectors [n, d] in place.
  void normalize(float* vectors, int64_t n) const;

  // Decodes n already-normalised vectors [n, d]. `on_progress(done)` is called
  // with the number of vectors finished so far (may be empty).
  std::vector<NeuronDecoding> decode_normalized(const float* vectors, int64_t n,
                                                const std::function<void(int64_t)>& on_progress = {}) const;

  // The backend decode_normalized uses ("cpu-avx2-fp32", ...), its
  // precision (Exact or Bf16, never Auto) and how its error bound is derived.
  std::string_view backend_name() const;
  Precision precision() const;
  std::string bound_definition() const;
  // Makes now what a decode of n vectors makes on its first call (the
  // backend's packed head, for n of a map's size: seconds for a 2 GiB head),
  // so that it can be timed apart.
  void prepare_for(int64_t n) const;

  // Logits of chosen tokens for n normalised vectors: out [n, tokens.size()],
  // float64 dot products.
  void token_logits(const float* vectors, int64_t n, const std::vector<int32_t>& tokens, double* out) const;

  // For each of n normalised vectors, how many vocabulary logits exceed
  // thresholds[i] (float32 GEMM; a full pass over the LM head).
  std::vector<int64_t> count_logits_above(const float* vectors, int64_t n, const double* thresholds) const;

 private:
  // The dequantised head [V, d], the final norm's weight and the backend
  // (lm_head_decoder.cpp).
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neuronlens

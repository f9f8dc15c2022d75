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

// How each tile of logits, vectors [m, d] x LM head tile [n, d]^T, is
// multiplied. All are float32 throughout, and the top candidates are
// re-scored in float64 whichever is used; they differ in rounding and speed
// only.
enum class LogitProduct {
  // Calls of under 1024 vectors (find, show) take Gemm: nothing to prepare.
  // Maps take PackedStrassen where the CPU has AVX2 and FMA (Packed for an
  // odd d); elsewhere Strassen for d >= 2048 and Gemm below.
  // bench/neuron_map_bench, against the bare sgemm of the same products:
  // PackedStrassen 1.16x faster on Llama-3.1-8B's shapes (BLAS Strassen
  // 1.04x) and 1.07x on the default model's whole map (plain sgemm per tile
  // 0.92x); README, "Speed".
  Auto,
  Gemm,  // plain BLAS sgemm per tile (the head re-packed by every call)
  // One level of Strassen-Winograd: 7/8 of the multiplications, for one more
  // LM head's worth of memory (each tile's B-side sums, made on the first
  // call that uses them). Needs an even d (else Gemm).
  Strassen,
  // Our AVX2 micro-kernel over the LM head packed once in its order (one more
  // LM head's worth of memory, made on the first call that uses it), with C
  // made and folded in blocks that stay in L2 (backends/cpu/packed_gemm.h).
  Packed,
  // Strassen's seven products with the Packed kernel: the seven B-side
  // operands of every 512-token tile packed once (7/4 of an LM head). Needs
  // an even d (else Packed).
  PackedStrassen,
};

// "auto", "gemm", "strassen", "packed", "packed-strassen"
std::string_view logit_product_name(LogitProduct product);
LogitProduct logit_product_from_name(std::string_view name);  // throws Error

struct DecodeSettings {
  NormMode norm = NormMode::Final;
  ReadNorm read_norm = ReadNorm::None;
  int top_k = 20;
  LogitProduct product = LogitProduct::Auto;
};

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
// each tile's logits come from one product (see LogitProduct) and are folded
// into a running (online) softmax and a per-vector top-k. Logits are the
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

  // The product decode_normalized of n vectors uses: Gemm, Strassen, Packed
  // or PackedStrassen, never Auto.
  LogitProduct product_for(int64_t n) const;
  // Makes now what decode_normalized of n vectors would make on its first
  // call (the Strassen sums, the packed head or the packed Strassen operands:
  // seconds for a 2 GiB head), so that it can be timed apart.
  void prepare_for(int64_t n) const;

  // Logits of chosen tokens for n normalised vectors: out [n, tokens.size()],
  // float64 dot products.
  void token_logits(const float* vectors, int64_t n, const std::vector<int32_t>& tokens, double* out) const;

  // For each of n normalised vectors, how many vocabulary logits exceed
  // thresholds[i] (float32 GEMM; a full pass over the LM head).
  std::vector<int64_t> count_logits_above(const float* vectors, int64_t n, const double* thresholds) const;

 private:
  // The dequantised head [V, d], the final norm's weight and the forms of
  // the head each product makes on first use (lm_head_decoder.cpp).
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace neuronlens

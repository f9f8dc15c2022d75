// Decoding FFN neuron vectors through the model's final norm and LM head:
// p = softmax(W_U · norm(v)), W_U [V, d]. This is the method of Davies,
// "Decoding specialised feature neurons in LLMs with the final projection
// layer" (arXiv 2501.02688), for every FFN vector kind.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/model.h"

namespace neuronlens {

// Which vector of neuron i is decoded.
enum class VectorKind {
  Up = 0,    // row i of up_proj [F, d]: what the neuron reads (the paper's choice)
  Gate = 1,  // row i of gate_proj [F, d]
  Down = 2,  // column i of down_proj [d, F]: what the neuron writes
};
constexpr int kVectorKindCount = 3;
std::string_view vector_kind_name(VectorKind kind);    // "up", "gate", "down"
VectorKind vector_kind_from_name(std::string_view name);  // throws Error

// What is applied to a vector before the LM head.
enum class NormMode {
  Final,  // the model's final RMSNorm, with its weight: v / rms(v) * gamma
  None,   // the raw vector
};
std::string_view norm_mode_name(NormMode mode);        // "final", "none"
NormMode norm_mode_from_name(std::string_view name);   // throws Error

// What the up and gate rows are decoded as. None: the raw row w (the
// paper's definition). Ffn: γ_ffn ⊙ w, the direction the neuron reads from
// the residual stream through its own pre-norm (w · (rmsnorm(x) ⊙ γ) =
// (γ ⊙ w) · rmsnorm(x)); for OLMo 2, which has no pre-norm, the raw row.
// Down columns are unaffected.
enum class ReadNorm { None, Ffn };
std::string_view read_norm_name(ReadNorm mode);        // "none", "ffn"
ReadNorm read_norm_from_name(std::string_view name);   // throws Error

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

// The decoded distribution of one vector. Probabilities are
// exp(logit - logsumexp).
struct NeuronDecoding {
  double logsumexp = 0;   // log sum_t exp(z_t) over the whole vocabulary
  double entropy = 0;     // -sum_t p_t log p_t, in nats
  double topk_mass = 0;   // sum of the top-k probabilities
  std::vector<int32_t> top_ids;     // best first; ties broken by lower id
  std::vector<double> top_logits;   // z_t of top_ids, re-scored in float64
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

struct StrassenHead;  // lm_head_decoder.cpp
namespace cpu {
class RhsPanels;
class PackedStrassenRhs;
}

// Holds the dequantised LM head and decodes blocks of vectors against it
// without materialising the [n, V] logits: the vocabulary is walked in tiles,
// each tile's logits come from one product (see LogitProduct) and are folded
// into a running (online) softmax and a per-vector top-k. Logits are the
// model's own: soft-capped where the family caps them (Gemma 2), so every
// logit it reports, counts or ranks is cap * tanh(z / cap).
class LmHeadDecoder {
 public:
  LmHeadDecoder(const Model& model, DecodeSettings settings);

  const DecodeSettings& settings() const { return settings_; }
  int64_t vocab_size() const { return vocab_size_; }
  int64_t d_model() const { return d_model_; }
  const float* lm_head() const { return lm_head_.data(); }  // [V, d]

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
  void decode_block(LogitProduct product, const float* vectors, int64_t n, NeuronDecoding* results,
                    std::vector<float>& logits) const;
  const StrassenHead& strassen_sums() const;
  const cpu::RhsPanels& packed_head() const;
  const cpu::PackedStrassenRhs& packed_strassen_head() const;

  DecodeSettings settings_;
  int64_t vocab_size_ = 0;
  int64_t d_model_ = 0;
  double rms_eps_ = 1e-5;
  double final_softcap_ = 0.0;     // 0: none
  std::vector<float> lm_head_;     // [V, d]
  std::vector<float> norm_weight_; // [d], gamma of the final RMSNorm (with the family's offset: Gemma's 1 + γ)
  // The Strassen path's B-side sums of each vocabulary tile (as many floats
  // as the LM head again), made by the first decode that needs them.
  mutable std::once_flag strassen_once_;
  mutable std::shared_ptr<const StrassenHead> strassen_;
  // The Packed path's copy of the LM head in the micro-kernel's panel order.
  mutable std::once_flag packed_once_;
  mutable std::shared_ptr<const cpu::RhsPanels> packed_;
  // The PackedStrassen path's B-side operands.
  mutable std::once_flag packed_strassen_once_;
  mutable std::shared_ptr<const cpu::PackedStrassenRhs> packed_strassen_;
};

}  // namespace neuronlens

// The neuron types shared by the decoder and the atlas: which vector of a
// neuron is decoded (VectorKind), what is applied to it (NormMode, ReadNorm),
// and the decoded distribution (NeuronDecoding). The name functions are in
// src/decode/option_names.cpp.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

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

// The decoded distribution of one vector. Probabilities are
// exp(logit - logsumexp).
struct NeuronDecoding {
  double logsumexp = 0;   // log sum_t exp(z_t) over the whole vocabulary
  double entropy = 0;     // -sum_t p_t log p_t, in nats
  double topk_mass = 0;   // sum of the top-k probabilities
  std::vector<int32_t> top_ids;     // best first; ties broken by lower id
  std::vector<double> top_logits;   // z_t of top_ids, re-scored in float64
  // Bounds on the error of logsumexp and entropy against the exact
  // computation (docs/precision.md): they take the float64 values of the
  // re-scored tokens and the bulk product's for the rest.
  double logsumexp_error = 0;
  double entropy_error = 0;
};

}  // namespace neuronlens

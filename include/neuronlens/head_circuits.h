// Attention heads read from their weights: the singular directions of each
// head's OV and QK circuits (Elhage et al.'s "A Mathematical Framework for
// Transformer Circuits"; Dar et al., "Analyzing Transformers in Embedding
// Space"; the SVD view of "Talking Heads").
//
// For query head h of a layer and its KV head g (grouped-query heads share
// W_V and W_K):
//   OV: M = W_O[:, h] · W_V[g]      (d x d, rank <= head_dim): what the head
//       writes (left) when it attends to a position holding the input (right);
//   QK: M = W_Q[h]ᵀ · W_K[g]        (d x d): the query directions (left) that
//       look for key directions (right). RoPE, q/k biases and q/k norms are
//       left out of this weight-only view (docs/circuits.md).
// M = U S Vᵀ; the top `rank` triplets are kept, S descending.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

#include "neuronlens/model.h"

namespace neuronlens {

enum class HeadCircuit { Ov = 0, Qk = 1 };
constexpr int kHeadCircuitCount = 2;
std::string_view head_circuit_name(HeadCircuit circuit);       // "ov", "qk"
HeadCircuit head_circuit_from_name(std::string_view name);     // throws Error
// The names of a direction's two sides: OV "out" (left) and "in" (right),
// QK "query" and "key".
std::string_view head_side_name(HeadCircuit circuit, int side);

struct HeadDirection {
  int64_t head = 0;
  int rank = 0;               // 0 = the largest singular value
  double singular_value = 0;
  std::vector<float> left;    // [d] unit: OV output direction, QK query direction
  std::vector<float> right;   // [d] unit: OV input direction, QK key direction
};

// The top `rank` singular directions of every query head's `circuit` in
// `layer`, [n_heads * rank] head-major, computed in float64 from the
// dequantised weights. The sign of each (left, right) pair is fixed so that
// the left vector's entry of largest magnitude (the first, on a tie) is
// positive. Throws Error on a layer outside the model or a rank outside
// [1, head_dim].
std::vector<HeadDirection> head_circuit_directions(const Model& model, HeadCircuit circuit, int64_t layer, int rank);

}  // namespace neuronlens

// Permanent weight edits written to a GGUF copy: concept removal by TARS
// (targeted angular reversal, Davies et al., arXiv 2412.10257) and the
// ablation or scaling of chosen neurons.
//
// TARS, as built here:
//   1. The targeting vector t̂ [d] (unit norm, residual-stream space) is the
//      direction whose decoding through the final norm and the LM head gives
//      the concept's tokens the most probability: it starts from the LM head
//      rows of the concept's tokens, g ⊙ (mean_c W_U[c] - mean_v W_U[v]) with g
//      the final norm's weight, and is refined by gradient ascent on
//      log sum_c p_c over the unit sphere. (The paper refines a vector taken
//      from activations on a concept prompt with random perturbations; this
//      starts from the head and climbs the same objective deterministically.)
//   2. The FFN vectors of the chosen kinds are ranked by their cosine with
//      t̂: up and gate rows [d] (what a neuron reads from the residual stream,
//      the paper's), and down columns [d] (what it writes into it, as they
//      reach the stream: times the post-norm weight in Gemma 2/3, OLMo 2).
//   3. The best `max_edits` vectors are replaced by -|w| t̂ (tars: the vector
//      points against the concept, at its own norm) or by zeros (zero).
// --ablate L:I and --scale L:I=F edit neuron I's up row: zeros, or the row
// times F. In the gated MLPs of every supported family the neuron's
// activation act(gate)*up is linear in the up row, so these equal the
// runtime's ablate_neurons / scale_neurons up to the type's rounding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/dtype.h"
#include "neuronlens/interventions.h"
#include "neuronlens/model.h"
#include "neuronlens/neuron.h"

namespace neuronlens {

enum class EditMethod { Tars, Zero };
std::string_view edit_method_name(EditMethod method);        // "tars", "zero"
EditMethod edit_method_from_name(std::string_view name);     // throws Error

struct TargetingVector {
  std::vector<float> direction;      // [d] unit norm
  double concept_prob_start = 0;     // sum_c p_c of the starting direction, decoded at unit RMS
  double concept_prob = 0;           // the same for `direction`
  int steps = 0;                     // accepted ascent steps
  std::vector<int32_t> top_ids;      // the direction's top decoded tokens, best first
  std::vector<double> top_probs;
};

// The concept's targeting vector (step 1 above). `concept_ids` are the
// concept's single tokens (concept_search.h's expand_concept); `refine_steps`
// 0 keeps the starting direction. Throws Error on an empty or out-of-range
// id list.
TargetingVector concept_targeting_vector(const Model& model, const std::vector<int32_t>& concept_ids,
                                         int refine_steps = 50, int top = 8);

// One vector an edit may replace: neuron `neuron` of layer `layer`, its up
// or gate row or down column, and the vector's cosine with the targeting
// vector.
struct EditTarget {
  VectorKind kind = VectorKind::Up;
  int64_t layer = 0;
  int64_t neuron = 0;
  double cosine = 0;
};

// The `max_edits` vectors of the `kinds` in `layers` (empty: all) with the
// largest cosine with `direction`, best first. Throws Error (bad input) for a
// layer out of range, or max_edits below 1 or above the number of vectors
// searched.
std::vector<EditTarget> rank_edit_targets(const Model& model, const std::vector<float>& direction,
                                          const std::vector<VectorKind>& kinds, const std::vector<int64_t>& layers,
                                          int64_t max_edits);

// One neuron vector's new values, before they are quantised to the
// tensor's type: a row of ffn_up / ffn_gate, or a column of ffn_down.
struct VectorEdit {
  VectorKind kind = VectorKind::Up;
  int64_t layer = 0;
  int64_t neuron = 0;
  std::vector<float> values;         // [d]
  std::string reason;                // "tars cos 0.412", "ablate", "scale 2"
};

// "up 12:345": the vector an edit replaces, for messages and the record.
std::string vector_edit_name(const VectorEdit& edit);

VectorEdit reversal_edit(const Model& model, const EditTarget& target, const std::vector<float>& direction,
                      EditMethod method);
VectorEdit ablation_edit(const Model& model, const FfnNeuron& neuron);
VectorEdit scale_edit(const Model& model, const FfnNeuron& neuron, float factor);

// A tensor the edit rewrote: its type before and after (the same where
// quantize.h writes the type; F16 for the K-quants) and how many of its rows
// and columns were replaced.
struct EditedTensor {
  std::string name;
  DType from = DType::F32;
  DType to = DType::F32;
  int64_t rows_edited = 0;
  int64_t columns_edited = 0;
};

// Writes the model's GGUF with `edits` applied to `out_path`: an edited row
// re-quantised to its tensor's type (the other rows keep their bytes); an
// edited column by re-quantising the one block of each row that holds it
// (the other blocks keep their bytes; that block's other values may move
// by the type's rounding); or, for a type neuronlens cannot quantise (the
// K-quants), the whole tensor stored as F16; every other tensor and metadata entry copied byte for
// byte, plus the metadata key `neuronlens.edit` = `description`. Throws
// Error (bad input) for a model not read from a GGUF file, an output path
// equal to the model's file, or a vector edited twice.
// Throws Error (bad input) when the model cannot be written to `out_path`:
// it was not read from a GGUF file, or `out_path` is that file. A front end
// calls it before the work of an edit; write_edited_gguf calls it too.
void check_edit_target(const Model& model, const std::string& out_path);

std::vector<EditedTensor> write_edited_gguf(const Model& model, const std::vector<VectorEdit>& edits,
                                            const std::string& description, const std::string& out_path);

}  // namespace neuronlens

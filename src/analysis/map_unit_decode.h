// The decoding steps of a map unit, shared by the one-process map (which
// batches the head units of several layers) and UnitMapper (one unit at a
// time, for the MPI map).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <vector>

#include "neuronlens/decode.h"
#include "neuronlens/map_units.h"
#include "neuronlens/model.h"

namespace neuronlens {

// The neurons of one (kind, layer): its vectors [d_ffn, d] loaded, normed
// and decoded; neuron i at i.
std::vector<NeuronDecoding> decode_neuron_unit(const Model& model, VectorKind kind, int64_t layer,
                                               const LmHeadDecoder& decoder,
                                               const std::function<void(int64_t)>& on_vectors);

// The decoder for the head sides that read the token embedding: none (use
// the LM head's) where the head is the embedding and nothing caps its
// logits, else one over the embedding (a second copy of a V x d matrix).
std::optional<LmHeadDecoder> embedding_decoder_for(const Model& model, const DecodeSettings& settings);

// The head directions of `layers` of one circuit, decoded together (a layer
// alone has too few to keep every thread's blocks full): one MappedUnit per
// layer, in order. An OV output direction is decoded as a down vector is
// (γ_post ⊙ u where the family norms the attention output; the final norm;
// the LM head); every other side through `embedding`. `on_vectors` counts
// both sides.
std::vector<MappedUnit> decode_head_units(const Model& model, HeadCircuit circuit, const std::vector<int64_t>& layers,
                                          int head_rank, const LmHeadDecoder& output, const LmHeadDecoder& embedding,
                                          const std::function<void(int64_t)>& on_vectors);

}  // namespace neuronlens

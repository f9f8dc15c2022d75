// The neuron map job: decode every chosen (kind, layer) of a model into an
// atlas, skipping what the atlas already holds.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/decode.h"
#include "neuronlens/head_circuits.h"
#include "neuronlens/model.h"

namespace neuronlens {

struct MapOptions {
  std::vector<VectorKind> kinds{VectorKind::Up, VectorKind::Gate, VectorKind::Down};
  // Attention heads too: each head's top `head_rank` singular directions of
  // these circuits (neuronlens/head_circuits.h), both sides decoded.
  std::vector<HeadCircuit> circuits;
  int head_rank = 4;
  std::vector<int64_t> layers;  // empty: all
  DecodeSettings settings;
};

// The argument parsers below throw Error with messages that name the text
// and what is wrong with it but no option or request field ("layer 'x' is
// not a number"): each front end puts its own name in front ("--layers: ",
// "layers: ").

// Parses all of `text` as a non-negative integer; throws Error naming `what`
// otherwise: ("layer", "x") gives "layer 'x' is not a number".
int64_t parse_nonnegative_integer(const std::string& text, const std::string& what);

// Parses "3-10", "0,5,7-9" or "all" into layer numbers, checked against the
// model's layer count. Throws Error ("layer 30 is out of range (the model has
// layers 0 to 29)", "range '5-3' runs backwards").
std::vector<int64_t> parse_layer_list(const std::string& text, int64_t n_layers);
// Parses "up,gate,down" (or "all"). Throws Error ("unknown neuron kind ...",
// "no kind given ...").
std::vector<VectorKind> parse_kind_list(const std::string& text);
// What `map --kinds` takes: neuron kinds and head circuits, e.g.
// "up,down,ov,qk" ("all": the three neuron kinds). Throws Error as
// parse_kind_list does.
struct MapKinds {
  std::vector<VectorKind> kinds;
  std::vector<HeadCircuit> circuits;
};
MapKinds parse_map_kinds(const std::string& text);

// The settings an atlas of this model records (hashes the model file(s)).
AtlasSettings atlas_settings_for(const Model& model, const DecodeSettings& settings);

struct MapProgress {
  int64_t vectors_done = 0;    // in this run (a head direction counts its two sides)
  int64_t vectors_total = 0;   // to do in this run
  int64_t layers_skipped = 0;  // (kind or circuit, layer) pairs already in the atlas
  int64_t layers_mapped = 0;   // (kind or circuit, layer) pairs written in this run
};

// Decodes what the atlas lacks. `on_progress` is called often (may be empty).
// Returns the final progress (vectors_total 0 when there was nothing to do).
MapProgress run_neuron_map(const Model& model, const MapOptions& options, Atlas& atlas,
                           const std::function<void(const MapProgress&)>& on_progress = {});

// SHA-256 of a model: of the GGUF file, or of the safetensors files in order.
std::string model_sha256(const Model& model);

}  // namespace neuronlens

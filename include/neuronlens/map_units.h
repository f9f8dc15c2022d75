// The neuron map in units: one (kind, layer) of FFN neurons or one (circuit,
// layer) of attention heads is the grain at which a map is planned, resumed,
// written (one transaction) and, across processes, handed out. run_neuron_map
// (neuronlens/neuron_map.h) runs them in one process; the MPI map
// (neuronlens/distributed_map.h) spreads them over ranks, which send their
// MappedUnits as bytes to the one writer.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/decode.h"
#include "neuronlens/head_circuits.h"
#include "neuronlens/model.h"
#include "neuronlens/neuron_map.h"

namespace neuronlens {

struct MapUnit {
  bool heads = false;                      // attention heads, else FFN neurons
  VectorKind kind = VectorKind::Up;        // when !heads
  HeadCircuit circuit = HeadCircuit::Ov;   // when heads
  int64_t layer = 0;
  bool operator==(const MapUnit&) const = default;
};

// "up layer 5", "ov heads of layer 3".
std::string map_unit_name(const MapUnit& unit);

// Vectors a unit decodes (d_ffn, or n_heads · rank directions times their
// two sides), the progress bar's count.
int64_t map_unit_vectors(const ModelConfig& config, const MapOptions& options, const MapUnit& unit);

// What a map of `options` still has to do in `atlas`: the units it lacks,
// neuron units layer-major then head units circuit-major (the order
// run_neuron_map batches heads in). Checks the layers and the head rank
// against the model and the atlas (Error, bad input).
struct MapPlan {
  std::vector<MapUnit> todo;
  int64_t units_skipped = 0;  // already in the atlas
  int64_t vectors_total = 0;  // over `todo`
};
MapPlan plan_neuron_map(const Model& model, const MapOptions& options, const Atlas& atlas);

// A decoded unit, ready to write.
struct MappedUnit {
  MapUnit unit;
  std::vector<NeuronDecoding> neurons;      // [d_ffn], neuron i at i (neuron units)
  std::vector<HeadDirection> directions;    // [n_heads · rank] head-major (head units)
  std::vector<NeuronDecoding> sides[2];     // [n_heads · rank] each: directions[i]'s two sides
};

// Writes one unit in one transaction (Atlas::write_layer / write_head_layer).
void write_mapped_unit(Atlas& atlas, const MappedUnit& mapped);

// Decodes units of one model one at a time, keeping its decoders (the LM
// head's, and the token embedding's for head circuits that read it) from
// one unit to the next. `on_vectors` gets the vectors done in the unit.
class UnitMapper {
 public:
  UnitMapper(const Model& model, const MapOptions& options);
  UnitMapper(UnitMapper&&) noexcept;
  ~UnitMapper();
  MappedUnit map(const MapUnit& unit, const std::function<void(int64_t)>& on_vectors = {}) const;
  const LmHeadDecoder& output_decoder() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// A MappedUnit as bytes, for sending between processes of the same build on
// machines of the same byte order (a header names the format version).
// deserialize throws Error (internal) on bytes that are not one.
std::string serialize_mapped_unit(const MappedUnit& mapped);
MappedUnit deserialize_mapped_unit(std::string_view bytes);

}  // namespace neuronlens

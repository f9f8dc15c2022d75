// The per-layer bookkeeping of `record` (neuronlens/neuron_record.h): every
// neuron's top contexts of both signs and its running statistics, fed one
// chunk's activations at a time.
//
// Most activations cannot enter a top list once it is full, so each token's
// row is first tested against every neuron's entry thresholds in one
// vectorisable pass (which also sums the statistics); only the rare hits
// are handled one by one. A hit is appended to the neuron's buffer of
// `capacity` > `contexts` entries; a full buffer is cut back to the best
// `contexts`, and the worst of those becomes the threshold a later
// activation must beat. Ranking: larger |activation| first, then the earlier
// (chunk, offset); so the result does not depend on when buffers are cut.
// The display windows are cut from the chunk once it is done, for the
// entries it added that are still kept: from a transposed copy of the block
// when many need one (a window is then one contiguous read, not 2W+1
// strided ones), else in place.
#pragma once

#include <cstdint>
#include <vector>

#include "neuronlens/neuron_evidence.h"

namespace neuronlens {

class LayerContextTracker {
 public:
  LayerContextTracker(int64_t n_neurons, int64_t contexts, int64_t window, double density_threshold);

  // One chunk's activations data [n_tokens, n_neurons] (row t: the chunk's
  // token at offset t). Row 0 is skipped (neuron_record.h says why).
  void add_chunk(const float* data, int64_t n_tokens, int64_t chunk);

  // Every neuron's state, contexts ranked and cut to `contexts`.
  std::vector<NeuronRecordState> state() const;
  // Continues from a state() (a checkpoint read back).
  void restore(const std::vector<NeuronRecordState>& states);

  int64_t n_neurons() const { return n_; }

 private:
  void add_block(int64_t j0, const float* data, int64_t n_tokens, int64_t chunk);
  void insert(int side, int64_t neuron, float value, int64_t chunk, int32_t offset);
  void capture_windows(int64_t j0, int64_t width, int64_t chunk, int64_t n_tokens, const float* values,
                       int64_t token_step, int64_t neuron_step);
  void cut(int side, int64_t neuron);
  std::vector<NeuronContext> ranked(int side, int64_t neuron) const;

  int64_t n_, contexts_, capacity_, window_, slots_;
  float density_threshold_;
  // Statistics [n]: sums in double across chunks.
  std::vector<double> sum_, sum_squares_, max_abs_;
  std::vector<int64_t> above_;
  // Entry thresholds [n]: positive side takes a > threshold_[0][j], negative
  // side a < threshold_[1][j]; 0 until a side holds `contexts` entries.
  std::vector<float> threshold_[2];
  // Buffers, [n][capacity] per field, per side.
  std::vector<int32_t> count_[2];
  std::vector<float> value_[2], scale_[2];
  std::vector<int64_t> chunk_[2];
  std::vector<int32_t> offset_[2], window_start_[2], window_len_[2];
  std::vector<int8_t> window_values_[2];  // [n][capacity][slots]
};

}  // namespace neuronlens

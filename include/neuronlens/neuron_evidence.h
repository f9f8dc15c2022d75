// What `record` (neuronlens/neuron_record.h) keeps per FFN neuron and
// stores in the atlas: its top contexts of both signs and its statistics
// over a corpus, and the corpus's identity.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace neuronlens {

// One corpus file as the atlas names it.
struct CorpusFile {
  std::string name;    // the file's base name
  std::string sha256;
  int64_t bytes = 0;
  int64_t documents = 0;  // texts in it: 1 for plain text, one per JSONL line
};

// One of a neuron's top contexts.
struct NeuronContext {
  float activation = 0;   // at the token
  int64_t chunk = 0;      // corpus chunk
  int32_t offset = 0;     // the token's place in the chunk (>= 1)
  // The neuron's activation on the chunk's tokens [window_start,
  // window_start + window.size()), within `window` of offset: window[i] *
  // window_scale (8-bit, for display; `activation` is exact).
  int32_t window_start = 0;
  float window_scale = 0;
  std::vector<int8_t> window;
};

struct NeuronStats {
  double mean = 0;
  double std = 0;       // population standard deviation
  double max_abs = 0;
  double density = 0;   // share of recorded tokens with |activation| > threshold
};

struct NeuronEvidence {
  int64_t layer = 0;
  int64_t index = 0;
  NeuronStats stats;
  std::vector<NeuronContext> positive;  // strongest first
  std::vector<NeuronContext> negative;  // most negative first
};

// A record as the atlas holds it: the corpus and the options. Two records
// with equal `identity` read the same tokens the same way.
struct RecordInfo {
  std::vector<CorpusFile> files;
  int64_t seq_len = 0;
  int64_t chunks_total = 0;
  int64_t chunks_done = 0;
  int64_t tokens_recorded = 0;  // in the chunks done (offsets >= 1)
  int64_t contexts = 0;
  int64_t window = 0;
  double density_threshold = 0;
  std::string identity;         // a digest of all of the above but the progress
  bool complete() const { return chunks_total > 0 && chunks_done == chunks_total; }
};

// A neuron's running state as a checkpoint stores it: the statistics' sums
// (so a resumed record continues them exactly) and its kept contexts.
struct NeuronRecordState {
  double sum = 0;
  double sum_squares = 0;
  double max_abs = 0;
  int64_t above_threshold = 0;
  std::vector<NeuronContext> positive, negative;
};

}  // namespace neuronlens

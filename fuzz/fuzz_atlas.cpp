// An atlas file (SQLite) as show, find, compare and serve read it: open,
// settings, the mapped layers, neurons, token texts, search, summaries and
// pages, and an activation record's tables. Corrupt pages, wrong schemas,
// rows with gaps or out-of-range ids, truncated blobs and absurd metadata
// must end in a neuronlens::Error.
#include <algorithm>
#include <cstdint>

#include "input_file.h"
#include "neuronlens/atlas.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using neuronlens::Atlas;
  static const neuronlens::fuzz::InputFile input("atlas.db");
  try {
    const Atlas atlas = Atlas::open(input.write(data, size));
    const auto layers = atlas.layers_done();
    for (size_t i = 0; i < std::min<size_t>(layers.size(), 4); ++i) {
      const auto [kind, layer] = layers[i];
      (void)atlas.neuron(kind, layer, 0);
      (void)atlas.layer_logsumexp(kind, layer);
      (void)atlas.layer_top1(kind, layer);
      (void)atlas.layer_neurons(kind, layer, Atlas::NeuronOrder::Entropy, true, 0, 5, 3);
      (void)atlas.summarize(kind, 0.5);
    }
    (void)atlas.token_text(0);
    (void)atlas.vocab_rows();
    (void)atlas.vocabulary();
    (void)atlas.search_tokens("dog", 5);
    (void)atlas.neurons_with_token(1, 0, 5);
    (void)atlas.count_neurons_with_token(1);
    // An activation record, where the file has one.
    if (const auto info = atlas.record_info()) {
      (void)atlas.neuron_evidence(0, 0);
      (void)atlas.layer_stats(0);
      if (info->chunks_done > 0) (void)atlas.corpus_chunk(0);
      (void)atlas.record_states();
    }
  } catch (const neuronlens::Error&) {
  }
  return 0;
}

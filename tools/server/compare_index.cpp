// The cached comparison of two atlases (compare_index.h).
#include "compare_index.h"

#include <climits>

#include "neuronlens/error.h"

namespace neuronlens::server {

CompareIndex::CompareIndex(const std::string& path, const AtlasSettings& served) : atlas_(path) {
  const AtlasSettings& other = atlas_.settings();
  // compare_atlases checks the same on first use; checking now makes a wrong
  // --compare fail at start instead of on a request.
  if (other.n_layers != served.n_layers || other.d_ffn != served.d_ffn || other.vocab_size != served.vocab_size ||
      other.top_k != served.top_k) {
    throw bad_input("--compare " + path + ": not the same shape as the served atlas (layers, FFN width, vocabulary "
                "and top-k must agree)");
  }
}

const CompareIndex::Result& CompareIndex::result(const Atlas& served) {
  std::lock_guard lock(mutex_);
  if (!result_) {
    const AtlasPool::Lease other = atlas_.acquire();
    // Every neuron in the changed list; its top tokens are dropped at once
    // and read back from the atlases for the few shown.
    Comparison full = compare_atlases(served, *other, INT_MAX);
    Result r;
    r.layers = std::move(full.layers);
    r.kinds = std::move(full.kinds);
    r.changed.reserve(full.most_changed.size());
    for (const ChangedNeuron& c : full.most_changed) r.changed.push_back({c.kind, c.layer, c.index, c.overlap});
    result_ = std::move(r);
  }
  return *result_;
}

}  // namespace neuronlens::server

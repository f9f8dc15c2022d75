// The served atlas against a second one (--compare): per-layer agreement and
// every neuron's top-k overlap, computed once on first use and kept as a
// compact list (about 24 bytes a neuron), so paging through the most changed
// neurons of any kind and layer is a scan, not a new comparison.
#pragma once

#include <cstdint>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "atlas_pool.h"
#include "neuronlens/compare.h"

namespace neuronlens::server {

class CompareIndex {
 public:
  struct Changed {
    VectorKind kind;
    int64_t layer;
    int64_t index;
    double overlap;
  };
  struct Result {
    std::vector<LayerAgreement> layers;
    std::vector<KindAgreement> kinds;
    std::vector<Changed> changed;  // every compared neuron, lowest overlap first
  };

  // Opens the other atlas; throws Error when its shape is not the served one's.
  CompareIndex(const std::string& path, const AtlasSettings& served);

  AtlasPool& atlas() { return atlas_; }
  const AtlasSettings& settings() const { return atlas_.settings(); }
  const std::string& path() const { return atlas_.path(); }
  // The comparison with `served` (a connection to the served atlas), computed
  // on the first call; later calls wait for it and share it.
  const Result& result(const Atlas& served);

 private:
  AtlasPool atlas_;
  std::mutex mutex_;
  std::optional<Result> result_;
};

}  // namespace neuronlens::server

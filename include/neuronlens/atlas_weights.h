// The weights an atlas was made from, for what needs them besides the atlas:
// find's exact ranking, and the server's search and model endpoints.
#pragma once

#include <optional>
#include <string>

#include "neuronlens/atlas.h"
#include "neuronlens/model.h"

namespace neuronlens {

struct AtlasWeights {
  std::string path;            // the weights tried
  std::optional<Model> model;  // loaded, and the atlas's own (same sha256)
  std::string why_missing;     // when `model` is empty: why
};

// Loads `override_path`, or else the model path the atlas records, and checks
// that its sha256 is the atlas's. A missing file or another model is not an
// error (the atlas alone still answers most questions): `model` stays empty
// and `why_missing` says why. A file that exists but does not load throws Error.
AtlasWeights load_atlas_weights(const Atlas& atlas, const std::string& override_path);

}  // namespace neuronlens

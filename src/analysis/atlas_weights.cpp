// Finding and checking the weights an atlas was made from.
#include "neuronlens/atlas_weights.h"

#include <filesystem>

#include "neuronlens/neuron_map.h"

namespace neuronlens {

AtlasWeights load_atlas_weights(const Atlas& atlas, const std::string& override_path) {
  AtlasWeights out;
  out.path = override_path.empty() ? atlas.settings().model_path : override_path;
  if (!std::filesystem::exists(out.path)) {
    out.why_missing = "model file " + out.path + " not found";
    return out;
  }
  Model model = Model::load(out.path);
  if (model_sha256(model) != atlas.settings().model_sha256) {
    out.why_missing = "model file " + out.path + " is not the one the atlas was made from (sha256 differs)";
    return out;
  }
  out.model.emplace(std::move(model));
  return out;
}

}  // namespace neuronlens

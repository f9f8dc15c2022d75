// Mapping a model into an in-memory atlas, for commands given a model where
// they need an atlas (find, compare).
#pragma once

#include <string>

#include "neuronlens/neuron_map.h"
#include "progress_bar.h"

namespace neuronlens::cli {

inline Atlas map_into_memory(const Model& model, const MapOptions& map, const std::string& label) {
  Atlas atlas = Atlas::create_or_resume(":memory:", atlas_settings_for(model, map.settings), model.vocab());
  ProgressBar bar(label, "vectors");
  run_neuron_map(model, map, atlas, [&](const MapProgress& p) { bar.update(p.vectors_done, p.vectors_total); });
  bar.finish();
  return atlas;
}

}  // namespace neuronlens::cli

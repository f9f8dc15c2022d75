#include "py_model.h"

namespace neuronlens::python {

PyModel::PyModel(const std::string& path) : text_(std::make_shared<const TextModel>(TextModel::load(path))) {}

std::shared_ptr<const LmHeadDecoder> PyModel::decoder(const DecodeSettings& settings) const {
  const std::lock_guard<std::mutex> lock(decoder_mutex_);
  if (!decoder_ || decoder_->settings().norm != settings.norm || decoder_->settings().top_k != settings.top_k ||
      decoder_->settings().precision != settings.precision) {
    decoder_.reset();  // free the old head before the new one is made
    decoder_ = std::make_shared<const LmHeadDecoder>(model(), settings);
  }
  return decoder_;
}

std::shared_ptr<Atlas> PyModel::memory_atlas(const MapOptions& map,
                                             const std::function<void(const MapProgress&)>& on_progress) const {
  const std::lock_guard<std::mutex> lock(atlas_mutex_);
  const DecodeSettings& wanted = map.settings;
  if (!memory_atlas_ || memory_atlas_->settings().norm != wanted.norm ||
      memory_atlas_->settings().read_norm != wanted.read_norm || memory_atlas_->settings().top_k != wanted.top_k) {
    memory_atlas_.reset();
    memory_atlas_ = std::make_shared<Atlas>(
        Atlas::create_or_resume(":memory:", atlas_settings_for(model(), wanted), model().vocab()));
  }
  run_neuron_map(model(), map, *memory_atlas_, on_progress);
  return memory_atlas_;
}

}  // namespace neuronlens::python

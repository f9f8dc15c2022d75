// The Python `Model`: the library's TextModel (weights, tokenizer, chat
// template) shared by the sessions made from it, and the LM-head decoder its
// last decode used, kept for the next.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include <functional>

#include "neuronlens/atlas.h"
#include "neuronlens/decode.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/text_model.h"

namespace neuronlens::python {

class PyModel {
 public:
  // Loads a GGUF file or a Hugging Face folder. Throws Error.
  explicit PyModel(const std::string& path);

  const TextModel& text() const { return *text_; }
  const Model& model() const { return text_->model; }
  const ModelConfig& config() const { return text_->model.config(); }
  std::shared_ptr<const TextModel> shared_text() const { return text_; }

  // A decoder of `settings` (its norm and top_k): the cached one when they
  // match, else a new one (which dequantises the LM head, V*d floats, and
  // replaces the cached one so that only one is held).
  std::shared_ptr<const LmHeadDecoder> decoder(const DecodeSettings& settings) const;

  // An in-memory atlas of the model holding at least what `map` asks for
  // (mapped now where missing, with `on_progress`): what find over a model
  // ranks with. Kept for the next call with the same decode settings.
  std::shared_ptr<Atlas> memory_atlas(const MapOptions& map,
                                      const std::function<void(const MapProgress&)>& on_progress) const;

 private:
  std::shared_ptr<const TextModel> text_;
  mutable std::mutex decoder_mutex_;
  mutable std::shared_ptr<const LmHeadDecoder> decoder_;
  mutable std::mutex atlas_mutex_;
  mutable std::shared_ptr<Atlas> memory_atlas_;
};

}  // namespace neuronlens::python

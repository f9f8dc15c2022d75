// Hugging Face safetensors files, read through a memory mapping.
//
// File layout: u64 N (little-endian) | N bytes of JSON header | data.
// The header maps each tensor name to {"dtype": "F32"|"F16"|"BF16"|...,
// "shape": [outermost, ..., row length], "data_offsets": [begin, end]} with
// offsets relative to the start of the data; an optional "__metadata__" maps
// strings to strings. A sharded checkpoint adds model.safetensors.index.json:
// {"weight_map": {tensor name: shard file name}}.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "neuronlens/tensor.h"

namespace neuronlens {

class MappedFile;

class SafetensorsFile {
 public:
  // Opens and validates `path`: header length bounded (<= 100 MB and the file
  // size), JSON well-formed, each entry's dtype supported (F32, F16, BF16),
  // shape matching the byte count, offsets in bounds, contiguous and not
  // overlapping, no key twice. Throws Error naming the file and tensor.
  // tensors() lists them in data-section order.
  static SafetensorsFile open(const std::string& path);

  const std::string& path() const { return path_; }
  const std::vector<TensorView>& tensors() const { return tensors_; }
  const TensorView* find_tensor(const std::string& name) const;
  const std::map<std::string, std::string>& metadata() const { return metadata_; }

 private:
  std::string path_;
  std::shared_ptr<MappedFile> file_;
  std::vector<TensorView> tensors_;
  std::unordered_map<std::string, size_t> index_;
  std::map<std::string, std::string> metadata_;
  friend class SafetensorsParser;
};

// All safetensors files of a Hugging Face model folder: model.safetensors, or
// the shards listed by model.safetensors.index.json (each listed tensor must be
// in the shard the index names). Tensor names are unique across shards. When a
// folder has both, model.safetensors wins, as in transformers.
class SafetensorsCheckpoint {
 public:
  static SafetensorsCheckpoint open_folder(const std::string& folder);

  const std::vector<SafetensorsFile>& files() const { return files_; }
  const TensorView* find_tensor(const std::string& name) const;
  std::vector<const TensorView*> tensors() const;  // every tensor of every shard

 private:
  struct TensorLocation {
    size_t file;    // index into files_
    size_t tensor;  // index into files_[file].tensors()
  };
  std::vector<SafetensorsFile> files_;
  // Indices rather than pointers, so a copied or moved checkpoint never points
  // into the tensors of another.
  std::unordered_map<std::string, TensorLocation> index_;
};

}  // namespace neuronlens

// The keys and values of the tokens a Session has seen, per layer
// [position, n_kv_heads * head_dim], held as float32 or as IEEE halves
// (KvCacheType). Grown as tokens arrive.
#pragma once

#include <cstdint>
#include <vector>

#include "neuronlens/runtime.h"

namespace neuronlens::runtime {

// One layer's cache as attention reads it: row j of keys/values at
// keys + j * row_width elements, of the cache's type.
struct KvLayerView {
  KvCacheType type;
  const void* keys;
  const void* values;
};

class KvCache {
 public:
  KvCache(KvCacheType type, int64_t n_layers, int64_t row_width);

  KvCacheType type() const { return type_; }
  // Writes the keys and values [n, row_width] of positions first .. first+n-1
  // of `layer` (rounded to halves for F16), growing the cache to first + n rows.
  void store(int64_t layer, int64_t first, int64_t n, const float* keys, const float* values);
  KvLayerView layer(int64_t layer) const;
  // Bytes allocated now.
  int64_t bytes() const;

 private:
  KvCacheType type_;
  int64_t row_width_;
  std::vector<std::vector<float>> keys_f32_, values_f32_;       // per layer, when F32
  std::vector<std::vector<uint16_t>> keys_f16_, values_f16_;    // per layer, when F16
};

}  // namespace neuronlens::runtime

#include "runtime/kv_cache.h"

#include <algorithm>
#include <string>

#include "io/half.h"
#include "neuronlens/error.h"

namespace neuronlens {

std::string_view kv_cache_type_name(KvCacheType type) {
  switch (type) {
    case KvCacheType::F32: return "f32";
    case KvCacheType::F16: return "f16";
  }
  return "?";
}

KvCacheType parse_kv_cache_type(std::string_view name) {
  for (KvCacheType t : {KvCacheType::F32, KvCacheType::F16}) {
    if (name == kv_cache_type_name(t)) return t;
  }
  throw bad_input("KV cache type '" + std::string(name) + "' is not one of f32, f16");
}

namespace runtime {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

template <typename T>
int64_t capacity_bytes(const std::vector<std::vector<T>>& layers) {
  int64_t total = 0;
  for (const auto& l : layers) total += static_cast<int64_t>(l.capacity() * sizeof(T));
  return total;
}

}  // namespace

KvCache::KvCache(KvCacheType type, int64_t n_layers, int64_t row_width) : type_(type), row_width_(row_width) {
  if (type == KvCacheType::F32) {
    keys_f32_.resize(sz(n_layers));
    values_f32_.resize(sz(n_layers));
  } else {
    keys_f16_.resize(sz(n_layers));
    values_f16_.resize(sz(n_layers));
  }
}

void KvCache::store(int64_t layer, int64_t first, int64_t n, const float* keys, const float* values) {
  const size_t rows_end = sz((first + n) * row_width_), begin = sz(first * row_width_), count = sz(n * row_width_);
  if (type_ == KvCacheType::F32) {
    for (auto [cache, src] : {std::pair{&keys_f32_[sz(layer)], keys}, std::pair{&values_f32_[sz(layer)], values}}) {
      cache->resize(rows_end);
      std::copy_n(src, count, cache->data() + begin);
    }
    return;
  }
  for (auto [cache, src] : {std::pair{&keys_f16_[sz(layer)], keys}, std::pair{&values_f16_[sz(layer)], values}}) {
    cache->resize(rows_end);
    for (size_t i = 0; i < count; ++i) (*cache)[begin + i] = fp32_to_fp16(src[i]);
  }
}

KvLayerView KvCache::layer(int64_t layer) const {
  if (type_ == KvCacheType::F32) return {type_, keys_f32_[sz(layer)].data(), values_f32_[sz(layer)].data()};
  return {type_, keys_f16_[sz(layer)].data(), values_f16_[sz(layer)].data()};
}

int64_t KvCache::bytes() const {
  return capacity_bytes(keys_f32_) + capacity_bytes(values_f32_) + capacity_bytes(keys_f16_) +
         capacity_bytes(values_f16_);
}

}  // namespace runtime
}  // namespace neuronlens

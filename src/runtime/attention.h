// Causal grouped-query attention of new tokens over the KV cache, in float32
// (a half-precision cache is widened as it is read).
#pragma once

#include <cstdint>

#include "runtime/kv_cache.h"

namespace neuronlens::runtime {

// For n_tokens queries q [n_tokens, n_heads*head_dim] (already rotated) at
// positions first_position .. first_position+n_tokens-1, and the cached
// keys/values of `kv` [first_position+n_tokens, n_kv_heads*head_dim] (the new
// tokens' included), writes out [n_tokens, n_heads*head_dim]: for query head hq, which
// reads kv head hq / (n_heads/n_kv_heads),
//   out = softmax_{first<=j<=pos}(cap(scale * q·k_j)) · v
// with the softmax shifted by its maximum so it cannot overflow. first is 0,
// or with a sliding window w > 0, max(0, pos - w + 1): the query sees its
// own key and the w - 1 before it. scale 0 means 1/sqrt(head_dim);
// cap(s) = softcap * tanh(s / softcap) when softcap > 0 (Gemma 2), else s.
//
// `pattern`, when given, receives the softmax weights: [n_heads, n_tokens,
// first_position + n_tokens], 0 where a query cannot see the key.
void causal_attention(const float* q, int64_t n_tokens, int64_t first_position, KvLayerView kv, int64_t n_heads,
                      int64_t n_kv_heads, int64_t head_dim, float* out, int64_t sliding_window = 0,
                      float scale = 0.0f, float softcap = 0.0f, float* pattern = nullptr);

}  // namespace neuronlens::runtime

#include "runtime/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/cpu_clones.h"
#include "backends/cpu/omp_exceptions.h"
#include "io/half.h"

namespace neuronlens::runtime {
namespace {

// One query against keys/values [first, visible) of its kv head (rows
// kv_width apart): out [head_dim] = softmax(scale * q·k_j) · v_j, `scores`
// as scratch; the softmax weights into weights[j] too when it is not null.
// The q·k sums run in eight partial sums so that they vectorise
// (a plain running sum may not be reordered, and stays scalar).
inline float widen(float x) { return x; }
inline float widen(uint16_t half) { return fp16_to_fp32(half); }

template <typename T>
NEURONLENS_CPU_CLONES void attend(const float* query, const T* keys, const T* values, int64_t kv_width,
                                  int64_t head_dim, int64_t first, int64_t visible, float scale, float softcap,
                                  float* scores, float* out, float* weights) {
  float max_score = -INFINITY;
  for (int64_t j = first; j < visible; ++j) {
    const T* key = keys + j * kv_width;
    float partial[8] = {};
    int64_t e = 0;
    for (; e + 8 <= head_dim; e += 8) {
      for (int64_t k = 0; k < 8; ++k) partial[k] += query[e + k] * widen(key[e + k]);
    }
    float dot = 0.0f;
    for (; e < head_dim; ++e) dot += query[e] * widen(key[e]);
    for (const float p : partial) dot += p;
    scores[j] = softcap > 0.0f ? softcap * std::tanh(dot * scale / softcap) : dot * scale;
    max_score = std::max(max_score, scores[j]);
  }
  float sum = 0.0f;
  for (int64_t j = first; j < visible; ++j) {
    scores[j] = std::exp(scores[j] - max_score);
    sum += scores[j];
  }
  const float inv_sum = 1.0f / sum;
  std::fill(out, out + head_dim, 0.0f);
  for (int64_t j = first; j < visible; ++j) {
    const float p = scores[j] * inv_sum;
    if (weights != nullptr) weights[j] = p;
    const T* value = values + j * kv_width;
    for (int64_t e = 0; e < head_dim; ++e) out[e] += p * widen(value[e]);
  }
}

}  // namespace

void causal_attention(const float* q, int64_t n_tokens, int64_t first_position, KvLayerView kv, int64_t n_heads,
                      int64_t n_kv_heads, int64_t head_dim, float* out, int64_t sliding_window, float scale,
                      float softcap, float* pattern) {
  const int64_t q_width = n_heads * head_dim;
  const int64_t kv_width = n_kv_heads * head_dim;
  const int64_t group = n_heads / n_kv_heads;
  if (scale == 0.0f) scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int64_t work = n_tokens * n_heads;
  const int64_t n_keys = first_position + n_tokens;
  if (pattern != nullptr) std::fill(pattern, pattern + n_heads * n_tokens * n_keys, 0.0f);
  // Threads only pay off for long prompts: for a token or two, waking them
  // (and their spinning afterwards, beside BLAS's own threads) costs more
  // than the work.
  const int64_t multiply_adds = work * (first_position + n_tokens) * head_dim;
  cpu::FirstException failure;  // an allocation failing here must reach the caller, not std::terminate
  // Items dealt out one by one: later tokens see more keys, so contiguous
  // runs of tokens would leave the first thread with the least work.
#pragma omp parallel for schedule(static, 1) if (multiply_adds > (int64_t{1} << 22))
  for (int64_t item = 0; item < work; ++item) {
    failure.run([&] {
      thread_local std::vector<float> scores;
      scores.resize(static_cast<size_t>(first_position + n_tokens));
      const int64_t t = item / n_heads, head = item % n_heads;
      const int64_t kv_offset = head / group * head_dim;
      const int64_t visible = first_position + t + 1;  // keys up to position first_position + t
      const int64_t first = sliding_window > 0 ? std::max<int64_t>(0, visible - sliding_window) : 0;
      const float* query = q + t * q_width + head * head_dim;
      float* head_out = out + t * q_width + head * head_dim;
      float* weights = pattern != nullptr ? pattern + (head * n_tokens + t) * n_keys : nullptr;
      if (kv.type == KvCacheType::F32) {
        attend(query, static_cast<const float*>(kv.keys) + kv_offset, static_cast<const float*>(kv.values) + kv_offset,
               kv_width, head_dim, first, visible, scale, softcap, scores.data(), head_out, weights);
      } else {
        attend(query, static_cast<const uint16_t*>(kv.keys) + kv_offset,
               static_cast<const uint16_t*>(kv.values) + kv_offset, kv_width, head_dim, first, visible, scale,
               softcap, scores.data(), head_out, weights);
      }
    });
  }
  failure.rethrow();
}

}  // namespace neuronlens::runtime

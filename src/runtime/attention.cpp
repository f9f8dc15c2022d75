#include "runtime/attention.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace neuronlens::runtime {

void causal_attention(const float* q, int64_t n_tokens, int64_t first_position, const float* keys, const float* values,
                      int64_t n_heads, int64_t n_kv_heads, int64_t head_dim, float* out, int64_t sliding_window) {
  const int64_t q_width = n_heads * head_dim;
  const int64_t kv_width = n_kv_heads * head_dim;
  const int64_t group = n_heads / n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(head_dim));
  const int64_t work = n_tokens * n_heads;
  // Threads only pay off for long prompts: for a token or two, waking them
  // (and their spinning afterwards, beside BLAS's own threads) costs more
  // than the work.
  const int64_t multiply_adds = work * (first_position + n_tokens) * head_dim;
#pragma omp parallel if (multiply_adds > (int64_t{1} << 22))
  {
    std::vector<float> scores(static_cast<size_t>(first_position + n_tokens));
#pragma omp for schedule(static)
    for (int64_t item = 0; item < work; ++item) {
      const int64_t t = item / n_heads, head = item % n_heads;
      const int64_t kv_head = head / group;
      const int64_t visible = first_position + t + 1;  // keys up to position first_position + t
      const int64_t first = sliding_window > 0 ? std::max<int64_t>(0, visible - sliding_window) : 0;
      const float* query = q + t * q_width + head * head_dim;
      float max_score = -INFINITY;
      for (int64_t j = first; j < visible; ++j) {
        const float* key = keys + j * kv_width + kv_head * head_dim;
        float dot = 0.0f;
        for (int64_t e = 0; e < head_dim; ++e) dot += query[e] * key[e];
        scores[static_cast<size_t>(j)] = dot * scale;
        max_score = std::max(max_score, scores[static_cast<size_t>(j)]);
      }
      float sum = 0.0f;
      for (int64_t j = first; j < visible; ++j) {
        scores[static_cast<size_t>(j)] = std::exp(scores[static_cast<size_t>(j)] - max_score);
        sum += scores[static_cast<size_t>(j)];
      }
      const float inv_sum = 1.0f / sum;
      float* o = out + t * q_width + head * head_dim;
      std::fill(o, o + head_dim, 0.0f);
      for (int64_t j = first; j < visible; ++j) {
        const float p = scores[static_cast<size_t>(j)] * inv_sum;
        const float* value = values + j * kv_width + kv_head * head_dim;
        for (int64_t e = 0; e < head_dim; ++e) o[e] += p * value[e];
      }
    }
  }
}

}  // namespace neuronlens::runtime

#include "runtime/rotary.h"

#include <cmath>
#include <numbers>
#include <string>

#include "neuronlens/error.h"

namespace neuronlens::runtime {

RotaryEmbedding::RotaryEmbedding(const ModelConfig& config, const std::vector<float>& rope_freqs)
    : head_dim_(config.head_dim), rotary_dim_(config.rotated_dims()), style_(config.rope_style) {
  const int64_t half = rotary_dim_ / 2;
  inv_freq_.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    inv_freq_[static_cast<size_t>(i)] =
        std::pow(config.rope_theta, -2.0 * static_cast<double>(i) / static_cast<double>(rotary_dim_));
  }

  const RopeScaling& s = config.rope_scaling;
  if (!rope_freqs.empty()) {
    // The tensor already holds the scaling (llama.cpp writes llama3 this way).
    if (static_cast<int64_t>(rope_freqs.size()) != half) {
      throw bad_file("rope_freqs has " + std::to_string(rope_freqs.size()) +
                     " values, expected rotary_dim/2 = " + std::to_string(half));
    }
    for (int64_t i = 0; i < half; ++i) inv_freq_[static_cast<size_t>(i)] /= rope_freqs[static_cast<size_t>(i)];
  } else if (s.type == "linear") {
    for (double& f : inv_freq_) f /= s.factor;
  } else if (s.type == "llama3") {
    if (s.original_context <= 0 || !(s.high_freq_factor > s.low_freq_factor)) {
      throw bad_file(
          "llama3 rope scaling needs original_max_position_embeddings > 0 and high_freq_factor > "
          "low_freq_factor, found " +
          std::to_string(s.original_context) + ", " + std::to_string(s.low_freq_factor) + ", " +
          std::to_string(s.high_freq_factor));
    }
    const auto old_context = static_cast<double>(s.original_context);
    const double low_freq_wavelen = old_context / s.low_freq_factor;
    const double high_freq_wavelen = old_context / s.high_freq_factor;
    for (double& f : inv_freq_) {
      const double wavelen = 2.0 * std::numbers::pi / f;
      if (wavelen < high_freq_wavelen) continue;
      if (wavelen > low_freq_wavelen) {
        f /= s.factor;
      } else {
        const double smooth = (old_context / wavelen - s.low_freq_factor) / (s.high_freq_factor - s.low_freq_factor);
        f = (1.0 - smooth) * f / s.factor + smooth * f;
      }
    }
  } else if (s.is_longrope()) {
    if (static_cast<int64_t>(s.short_factor.size()) != half || static_cast<int64_t>(s.long_factor.size()) != half) {
      throw bad_file("LongRoPE factors: " + std::to_string(s.short_factor.size()) + " short and " +
                     std::to_string(s.long_factor.size()) + " long, expected rotary_dim/2 = " + std::to_string(half));
    }
    inv_freq_long_ = inv_freq_;
    for (int64_t i = 0; i < half; ++i) {
      inv_freq_[static_cast<size_t>(i)] /= s.short_factor[static_cast<size_t>(i)];
      inv_freq_long_[static_cast<size_t>(i)] /= s.long_factor[static_cast<size_t>(i)];
    }
    original_context_ = s.original_context;
    cos_sin_scale_ = s.attention_factor;
  } else if (!s.type.empty()) {
    throw bad_file("rope scaling type '" + s.type + "' is not supported (expected none, linear, llama3 or longrope)");
  }
}

void RotaryEmbedding::apply(float* x, int64_t n_tokens, int64_t row_stride, int64_t n_heads, int64_t first_position,
                            int64_t sequence_length) const {
  const int64_t half = rotary_dim_ / 2;
  const std::vector<double>& inv_freq = inverse_frequencies(sequence_length);
  // Which two dimensions of a head frequency j rotates.
  const int64_t pair_offset = style_ == RopeStyle::NeoX ? half : 1;
  const int64_t first_step = style_ == RopeStyle::NeoX ? 1 : 2;
  std::vector<float> cos_table(static_cast<size_t>(half)), sin_table(static_cast<size_t>(half));
  for (int64_t t = 0; t < n_tokens; ++t) {
    const auto pos = static_cast<double>(first_position + t);
    for (int64_t j = 0; j < half; ++j) {
      const double angle = pos * inv_freq[static_cast<size_t>(j)];
      cos_table[static_cast<size_t>(j)] = static_cast<float>(std::cos(angle) * cos_sin_scale_);
      sin_table[static_cast<size_t>(j)] = static_cast<float>(std::sin(angle) * cos_sin_scale_);
    }
    float* row = x + t * row_stride;
    for (int64_t h = 0; h < n_heads; ++h) {
      float* head = row + h * head_dim_;
      for (int64_t j = 0; j < half; ++j) {
        float& a = head[j * first_step];
        float& b = head[j * first_step + pair_offset];
        const float c = cos_table[static_cast<size_t>(j)], s = sin_table[static_cast<size_t>(j)];
        const float a0 = a, b0 = b;
        a = a0 * c - b0 * s;
        b = b0 * c + a0 * s;
      }
    }
  }
}

}  // namespace neuronlens::runtime

// Folding logit tiles into per-vector softmax statistics and a top-k, so the
// full [n, V] logits matrix never exists.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

namespace neuronlens::decode_detail {

// exp(x) for x <= 0 to about 2 ulp, written branch-free so the compiler can
// vectorise the loops that call it (std::exp does not vectorise here).
// Cephes-style: x = n ln2 + r, |r| <= ln2/2, exp(r) by a degree-6 polynomial.
inline float fast_exp_nonpositive(float x) {
  x = std::max(x, -87.0f);  // below this exp underflows to 0 in float32 anyway
  const float n = std::nearbyint(x * 1.44269504088896341f);
  float r = x - n * 0.693359375f;        // ln2 split hi/lo for an exact reduction
  r = r - n * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof scale);
  return p * scale;
}

// Running softmax statistics of one vector's logits, shifted by the running
// maximum so nothing overflows:
//   sum_exp   = sum_t exp(z_t - max)
//   sum_shift = sum_t exp(z_t - max) * (z_t - max)
// Then logsumexp = max + log(sum_exp) and
//   entropy = log(sum_exp) - sum_shift / sum_exp.
struct OnlineSoftmax {
  double max = -INFINITY;
  double sum_exp = 0;
  double sum_shift = 0;

  void add_tile(const float* z, int64_t n) {
    float tile_max = -INFINITY;
    for (int64_t i = 0; i < n; ++i) tile_max = std::max(tile_max, z[i]);
    if (tile_max > max) {
      // Re-base the running sums on the new maximum.
      if (sum_exp > 0) {
        const double c = std::exp(max - tile_max);
        sum_shift = c * (sum_shift + sum_exp * (max - tile_max));
        sum_exp *= c;
      }
      max = tile_max;
    }
    const float m = static_cast<float>(max);
    // Float partial sums over short runs keep the loop vectorised; the runs
    // are added in double so long vocabularies lose no precision.
    constexpr int64_t kRun = 512;
    for (int64_t start = 0; start < n; start += kRun) {
      const int64_t end = std::min(n, start + kRun);
      float s = 0, u = 0;
      for (int64_t i = start; i < end; ++i) {
        const float shifted = z[i] - m;
        const float e = fast_exp_nonpositive(shifted);
        s += e;
        u += e * shifted;
      }
      sum_exp += s;
      sum_shift += u;
    }
  }

  double logsumexp() const { return max + std::log(sum_exp); }
  double entropy() const { return std::log(sum_exp) - sum_shift / sum_exp; }
};

// The `capacity` largest logits seen so far, as a min-heap on (logit, -id) so
// that among equal logits the lower token id wins.
class TopK {
 public:
  explicit TopK(int capacity) : capacity_(capacity) { items_.reserve(static_cast<size_t>(capacity)); }

  float threshold() const {
    return static_cast<int>(items_.size()) < capacity_ ? -INFINITY : items_.front().logit;
  }

  void add_tile(const float* z, int64_t n, int32_t first_id) {
    float t = threshold();
    for (int64_t i = 0; i < n; ++i) {
      if (z[i] >= t) {  // rare after the first tiles: most logits fail here
        push(z[i], first_id + static_cast<int32_t>(i));
        t = threshold();
      }
    }
  }

  struct Item {
    float logit;
    int32_t id;
  };
  const std::vector<Item>& items() const { return items_; }

 private:
  // Ranking order: higher logit first, then lower id. Used as the heap's
  // "less", it keeps the worst kept item on top, ready to be replaced.
  static bool better(const Item& a, const Item& b) {
    return a.logit > b.logit || (a.logit == b.logit && a.id < b.id);
  }
  void push(float logit, int32_t id) {
    Item item{logit, id};
    if (static_cast<int>(items_.size()) < capacity_) {
      items_.push_back(item);
      std::push_heap(items_.begin(), items_.end(), better);
    } else if (better(item, items_.front())) {
      std::pop_heap(items_.begin(), items_.end(), better);
      items_.back() = item;
      std::push_heap(items_.begin(), items_.end(), better);
    }
  }
  int capacity_;
  std::vector<Item> items_;
};

}  // namespace neuronlens::decode_detail

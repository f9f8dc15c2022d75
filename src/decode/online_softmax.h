// Folding logit tiles into per-vector softmax statistics and a top-k, so the
// full [n, V] logits matrix never exists.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <vector>

#include "backends/cpu/logit_fold.h"

namespace neuronlens::decode_detail {

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
    if (max == -INFINITY) {  // the first tile: shift by its own maximum
      max = cpu::max_of(z, n);
      cpu::exp_sums(z, n, static_cast<float>(max), sum_exp, sum_shift);
      return;
    }
    // Later tiles take one pass, shifted by the running maximum, which they
    // seldom exceed; the sums are re-based when one does, and a tile that
    // exceeds it by more than float's exp can take is done again.
    double tile_exp = 0, tile_shift = 0;
    const float tile_max = cpu::exp_sums(z, n, static_cast<float>(max), tile_exp, tile_shift);
    if (tile_max - max > kLargestShift) {  // exp(z - max) may have overflowed: redo it
      tile_exp = tile_shift = 0;
      rebase(tile_max);
      cpu::exp_sums(z, n, tile_max, tile_exp, tile_shift);
    }
    sum_exp += tile_exp;
    sum_shift += tile_shift;
    if (tile_max > max) rebase(tile_max);
  }

  // Swaps one logit's term, counted as `old_logit`, for `new_logit` (its
  // float64 re-score). Both are at most a rounding error apart, so the max
  // stays a valid shift.
  void replace_term(double old_logit, double new_logit) {
    const double e_old = std::exp(old_logit - max), e_new = std::exp(new_logit - max);
    sum_exp += e_new - e_old;
    sum_shift += e_new * (new_logit - max) - e_old * (old_logit - max);
  }

  double logsumexp() const { return max + std::log(sum_exp); }
  double entropy() const { return std::log(sum_exp) - sum_shift / sum_exp; }

 private:
  // exp(60) is 1e26: far from float's 3e38, so a tile's float run sums of
  // terms this large stay finite.
  static constexpr double kLargestShift = 60;

  // Re-bases the sums on a new, larger maximum.
  void rebase(double new_max) {
    if (sum_exp > 0) {
      const double c = std::exp(max - new_max);
      sum_shift = c * (sum_shift + sum_exp * (max - new_max));
      sum_exp *= c;
    }
    max = new_max;
  }
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
    // Most logits fall below the threshold once the first tiles are in, so
    // scan for the next one that does not and push only those.
    for (int64_t i = cpu::first_at_least(z, 0, n, threshold()); i < n;
         i = cpu::first_at_least(z, i + 1, n, threshold())) {
      push(z[i], first_id + static_cast<int32_t>(i));
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

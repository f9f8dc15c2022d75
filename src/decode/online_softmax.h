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
// maximum so nothing overflows: with x_t = z_t - max,
//   sums.exp = sum_t e^{x_t},  sums.shift = sum_t e^{x_t} x_t,
//   sums.shift2 = sum_t e^{x_t} x_t^2.
// Then logsumexp = max + log(exp), entropy = log(exp) - shift / exp, and the
// variance of z under the softmax is shift2 / exp - (shift / exp)^2.
struct OnlineSoftmax {
  double max = -INFINITY;
  cpu::ExpSums sums;

  void add_tile(const float* z, int64_t n) {
    if (max == -INFINITY) {  // the first tile: shift by its own maximum
      max = cpu::max_of(z, n);
      cpu::exp_sums(z, n, static_cast<float>(max), sums);
      return;
    }
    // Later tiles take one pass, shifted by the running maximum, which they
    // seldom exceed; the sums are re-based when one does, and a tile that
    // exceeds it by more than float's exp can take is done again.
    cpu::ExpSums tile;
    const float tile_max = cpu::exp_sums(z, n, static_cast<float>(max), tile);
    if (tile_max - max > kLargestShift) {  // exp(z - max) may have overflowed: redo it
      tile = {};
      rebase(tile_max);
      cpu::exp_sums(z, n, tile_max, tile);
    }
    sums.exp += tile.exp;
    sums.shift += tile.shift;
    sums.shift2 += tile.shift2;
    if (tile_max > max) rebase(tile_max);
  }

  // e^{z - max}: one logit's share of sums.exp.
  double term(double logit) const { return std::exp(logit - max); }

  // Swaps one logit's terms, counted as `old_logit`, for `new_logit` (its
  // float64 re-score). Both are within the product's error bound of each
  // other, far less than kLargestShift, so the max stays a valid shift.
  void replace_term(double old_logit, double new_logit) {
    const double x_old = old_logit - max, x_new = new_logit - max;
    const double e_old = std::exp(x_old), e_new = std::exp(x_new);
    sums.exp += e_new - e_old;
    sums.shift += e_new * x_new - e_old * x_old;
    sums.shift2 += e_new * x_new * x_new - e_old * x_old * x_old;
  }

  double logsumexp() const { return max + std::log(sums.exp); }
  double entropy() const { return std::log(sums.exp) - sums.shift / sums.exp; }
  double variance() const {
    const double mean = sums.shift / sums.exp;
    return std::max(0.0, sums.shift2 / sums.exp - mean * mean);
  }

 private:
  // exp(60) is 1e26: far from float's 3e38, so a tile's float run sums of
  // terms this large stay finite.
  static constexpr double kLargestShift = 60;

  // Re-bases the sums on a new, larger maximum: with c = e^{max - new_max}
  // and delta = max - new_max, each term e^{x} x^p becomes
  // c e^{x} (x + delta)^p.
  void rebase(double new_max) {
    if (sums.exp > 0) {
      const double c = std::exp(max - new_max), delta = max - new_max;
      sums.shift2 = c * (sums.shift2 + 2 * delta * sums.shift + delta * delta * sums.exp);
      sums.shift = c * (sums.shift + sums.exp * delta);
      sums.exp *= c;
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

  // Adds z[i] - shift for each i: a tile's lower bounds, z minus the
  // tile's error bound.
  void add_tile_shifted(const float* z, int64_t n, int32_t first_id, float shift) {
    for (int64_t i = cpu::first_at_least(z, 0, n, threshold() + shift); i < n;
         i = cpu::first_at_least(z, i + 1, n, threshold() + shift)) {
      push(z[i] - shift, first_id + static_cast<int32_t>(i));
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

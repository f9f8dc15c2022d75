// LayerContextTracker (top_contexts.h).
#include "top_contexts.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <numeric>

#include "backends/cpu/omp_exceptions.h"
#include "neuronlens/error.h"

namespace neuronlens {
namespace {

// Neurons per block of the parallel pass: one block's thresholds, partial
// sums and hit flags stay in L1 while the block walks the chunk's rows.
constexpr int64_t kBlock = 256;
// window_len of an entry whose window the chunk has not written yet.
constexpr int32_t kWindowPending = -1;

// The ranking of one side's contexts: the stronger activation first (larger
// on the positive side, more negative on the negative), then the earlier
// chunk, then the earlier offset.
bool ranks_before(int side, float value_a, int64_t chunk_a, int32_t offset_a, float value_b, int64_t chunk_b,
                  int32_t offset_b) {
  if (value_a != value_b) return side == 0 ? value_a > value_b : value_a < value_b;
  if (chunk_a != chunk_b) return chunk_a < chunk_b;
  return offset_a < offset_b;
}

}  // namespace

LayerContextTracker::LayerContextTracker(int64_t n_neurons, int64_t contexts, int64_t window,
                                         double density_threshold)
    : n_(n_neurons),
      contexts_(contexts),
      capacity_(contexts + std::max<int64_t>(4, contexts / 2)),
      window_(window),
      slots_(2 * window + 1),
      density_threshold_(static_cast<float>(density_threshold)) {
  if (n_neurons <= 0 || contexts <= 0 || window < 0) {
    throw internal_error("LayerContextTracker: " + std::to_string(n_neurons) + " neurons, " +
                         std::to_string(contexts) + " contexts, window " + std::to_string(window));
  }
  const auto n = static_cast<size_t>(n_), entries = static_cast<size_t>(n_ * capacity_);
  sum_.assign(n, 0);
  sum_squares_.assign(n, 0);
  max_abs_.assign(n, 0);
  above_.assign(n, 0);
  for (int s = 0; s < 2; ++s) {
    threshold_[s].assign(n, 0.0f);
    count_[s].assign(n, 0);
    value_[s].resize(entries);
    scale_[s].resize(entries);
    chunk_[s].resize(entries);
    offset_[s].resize(entries);
    window_start_[s].resize(entries);
    window_len_[s].resize(entries);
    window_values_[s].resize(entries * static_cast<size_t>(slots_));
  }
}

void LayerContextTracker::add_chunk(const float* data, int64_t n_tokens, int64_t chunk) {
  if (n_tokens < 2) return;
  const int64_t blocks = (n_ + kBlock - 1) / kBlock;
  cpu::FirstException failure;  // an allocation failing in a block must reach the caller, not std::terminate
#pragma omp parallel for schedule(dynamic, 1)
  for (int64_t b = 0; b < blocks; ++b) failure.run([&] { add_block(b * kBlock, data, n_tokens, chunk); });
  failure.rethrow();
}

// Neurons [j0, j0 + kBlock) of one chunk: one thread.
void LayerContextTracker::add_block(int64_t j0, const float* data, int64_t n_tokens, int64_t chunk) {
  const int64_t width = std::min(kBlock, n_ - j0);
  // Per-chunk partial sums in float (a chunk is at most a few thousand
  // tokens), added to the double totals once.
  float sum[kBlock] = {}, squares[kBlock] = {}, max_abs[kBlock] = {};
  int32_t above[kBlock] = {};
  uint8_t hit[kBlock];
  const float* positive_threshold = threshold_[0].data() + j0;
  const float* negative_threshold = threshold_[1].data() + j0;
  const float density = density_threshold_;
  int64_t inserted = 0;  // hits handed to insert() (some may not be kept)
  for (int64_t t = 1; t < n_tokens; ++t) {
    const float* row = data + t * n_ + j0;
    uint8_t any = 0;
    for (int64_t k = 0; k < width; ++k) {
      const float a = row[k];
      const float magnitude = std::fabs(a);
      sum[k] += a;
      squares[k] += a * a;
      max_abs[k] = std::max(max_abs[k], magnitude);
      above[k] += magnitude > density ? 1 : 0;
      hit[k] = static_cast<uint8_t>((a > positive_threshold[k]) | ((a < negative_threshold[k]) << 1));
      any |= hit[k];
    }
    if (!any) continue;
    for (int64_t k = 0; k < width; ++k) {
      if (hit[k] & 1) insert(0, j0 + k, row[k], chunk, static_cast<int32_t>(t));
      if (hit[k] & 2) insert(1, j0 + k, row[k], chunk, static_cast<int32_t>(t));
      inserted += (hit[k] & 1) + (hit[k] >> 1);
    }
  }
  // The windows: from the block's activations by neuron, [width, n_tokens],
  // when many entries need one; else read in place, a stride apart.
  thread_local std::vector<float> columns;
  if (inserted * slots_ * 4 > width * n_tokens) {
    columns.resize(static_cast<size_t>(width * n_tokens));
    for (int64_t t = 0; t < n_tokens; ++t) {
      const float* row = data + t * n_ + j0;
      for (int64_t k = 0; k < width; ++k) columns[static_cast<size_t>(k * n_tokens + t)] = row[k];
    }
    capture_windows(j0, width, chunk, n_tokens, columns.data(), 1, n_tokens);
  } else if (inserted > 0) {
    capture_windows(j0, width, chunk, n_tokens, data + j0, n_, 1);
  }
  for (int64_t k = 0; k < width; ++k) {
    const auto j = static_cast<size_t>(j0 + k);
    sum_[j] += sum[k];
    sum_squares_[j] += squares[k];
    max_abs_[j] = std::max(max_abs_[j], static_cast<double>(max_abs[k]));
    above_[j] += above[k];
  }
}

void LayerContextTracker::insert(int side, int64_t neuron, float value, int64_t chunk, int32_t offset) {
  int32_t& count = count_[side][static_cast<size_t>(neuron)];
  if (count == capacity_) cut(side, neuron);
  // The cut may have raised the threshold past this value.
  if (side == 0 ? !(value > threshold_[0][static_cast<size_t>(neuron)])
                : !(value < threshold_[1][static_cast<size_t>(neuron)])) {
    return;
  }
  const auto e = static_cast<size_t>(neuron * capacity_ + count);
  value_[side][e] = value;
  chunk_[side][e] = chunk;
  offset_[side][e] = offset;
  window_len_[side][e] = kWindowPending;  // filled when the chunk is done (capture_windows)
  ++count;
}

// The windows of the entries this chunk added and kept: each neuron's
// activations around the token, from offset 1 (the chunk's first row is not
// text) to the chunk's end, 8-bit with one scale. Neuron
// j0 + k's activation on token t is values[k * neuron_step + t * token_step].
void LayerContextTracker::capture_windows(int64_t j0, int64_t width, int64_t chunk, int64_t n_tokens,
                                          const float* values, int64_t token_step, int64_t neuron_step) {
  for (int64_t k = 0; k < width; ++k) {
    const float* v = values + k * neuron_step;
    const auto column = [&](int64_t t) { return v[t * token_step]; };
    const int64_t neuron = j0 + k;
    for (int side = 0; side < 2; ++side) {
      for (int32_t i = 0; i < count_[side][static_cast<size_t>(neuron)]; ++i) {
        const auto e = static_cast<size_t>(neuron * capacity_ + i);
        if (window_len_[side][e] != kWindowPending || chunk_[side][e] != chunk) continue;
        const int64_t offset = offset_[side][e];
        const int64_t first = std::max<int64_t>(1, offset - window_);
        const int64_t last = std::min<int64_t>(n_tokens - 1, offset + window_);
        float largest = 0;
        for (int64_t t = first; t <= last; ++t) largest = std::max(largest, std::fabs(column(t)));
        const float scale = largest > 0 ? largest / 127.0f : 0.0f;
        int8_t* window = window_values_[side].data() + e * static_cast<size_t>(slots_);
        for (int64_t t = first; t <= last; ++t) {
          const float q = scale > 0 ? std::nearbyint(column(t) / scale) : 0.0f;
          window[t - first] = static_cast<int8_t>(std::clamp(q, -127.0f, 127.0f));
        }
        window_start_[side][e] = static_cast<int32_t>(first);
        window_len_[side][e] = static_cast<int32_t>(last - first + 1);
        scale_[side][e] = scale;
      }
    }
  }
}

// Keeps the best `contexts_` of a full buffer and raises the threshold to
// the worst of them.
void LayerContextTracker::cut(int side, int64_t neuron) {
  const auto base = static_cast<size_t>(neuron * capacity_);
  const int32_t count = count_[side][static_cast<size_t>(neuron)];
  thread_local std::vector<int32_t> order;
  order.resize(static_cast<size_t>(count));
  std::iota(order.begin(), order.end(), 0);
  const float* values = value_[side].data() + base;
  const int64_t* chunks = chunk_[side].data() + base;
  const int32_t* offsets = offset_[side].data() + base;
  const auto better = [&](int32_t a, int32_t b) {
    return ranks_before(side, values[a], chunks[a], offsets[a], values[b], chunks[b], offsets[b]);
  };
  const auto keep = static_cast<size_t>(std::min<int64_t>(contexts_, count));
  std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(keep) - 1, order.end(), better);
  order.resize(keep);
  std::sort(order.begin(), order.end());  // keep in place, in their old order
  const auto slots = static_cast<size_t>(slots_);
  float worst = values[order[0]];
  for (size_t i = 0; i < keep; ++i) {
    const size_t from = base + static_cast<size_t>(order[i]), to = base + i;
    worst = side == 0 ? std::min(worst, value_[side][from]) : std::max(worst, value_[side][from]);
    if (from == to) continue;
    value_[side][to] = value_[side][from];
    scale_[side][to] = scale_[side][from];
    chunk_[side][to] = chunk_[side][from];
    offset_[side][to] = offset_[side][from];
    window_start_[side][to] = window_start_[side][from];
    window_len_[side][to] = window_len_[side][from];
    std::copy_n(window_values_[side].begin() + static_cast<std::ptrdiff_t>(from * slots), slots,
                window_values_[side].begin() + static_cast<std::ptrdiff_t>(to * slots));
  }
  count_[side][static_cast<size_t>(neuron)] = static_cast<int32_t>(keep);
  if (static_cast<int64_t>(keep) == contexts_) threshold_[side][static_cast<size_t>(neuron)] = worst;
}

std::vector<NeuronContext> LayerContextTracker::ranked(int side, int64_t neuron) const {
  const auto base = static_cast<size_t>(neuron * capacity_);
  std::vector<NeuronContext> all;
  for (int32_t i = 0; i < count_[side][static_cast<size_t>(neuron)]; ++i) {
    const size_t e = base + static_cast<size_t>(i);
    NeuronContext c;
    c.activation = value_[side][e];
    c.chunk = chunk_[side][e];
    c.offset = offset_[side][e];
    c.window_start = window_start_[side][e];
    c.window_scale = scale_[side][e];
    const auto* w = window_values_[side].data() + e * static_cast<size_t>(slots_);
    c.window.assign(w, w + window_len_[side][e]);
    all.push_back(std::move(c));
  }
  std::sort(all.begin(), all.end(), [side](const NeuronContext& a, const NeuronContext& b) {
    return ranks_before(side, a.activation, a.chunk, a.offset, b.activation, b.chunk, b.offset);
  });
  if (static_cast<int64_t>(all.size()) > contexts_) all.resize(static_cast<size_t>(contexts_));
  return all;
}

std::vector<NeuronRecordState> LayerContextTracker::state() const {
  std::vector<NeuronRecordState> out(static_cast<size_t>(n_));
  for (int64_t j = 0; j < n_; ++j) {
    NeuronRecordState& s = out[static_cast<size_t>(j)];
    s.sum = sum_[static_cast<size_t>(j)];
    s.sum_squares = sum_squares_[static_cast<size_t>(j)];
    s.max_abs = max_abs_[static_cast<size_t>(j)];
    s.above_threshold = above_[static_cast<size_t>(j)];
    s.positive = ranked(0, j);
    s.negative = ranked(1, j);
  }
  return out;
}

void LayerContextTracker::restore(const std::vector<NeuronRecordState>& states) {
  if (static_cast<int64_t>(states.size()) != n_) {
    throw bad_file("the atlas's record holds " + std::to_string(states.size()) + " neurons for a layer of " +
                   std::to_string(n_));
  }
  for (int64_t j = 0; j < n_; ++j) {
    const NeuronRecordState& s = states[static_cast<size_t>(j)];
    sum_[static_cast<size_t>(j)] = s.sum;
    sum_squares_[static_cast<size_t>(j)] = s.sum_squares;
    max_abs_[static_cast<size_t>(j)] = s.max_abs;
    above_[static_cast<size_t>(j)] = s.above_threshold;
    for (int side = 0; side < 2; ++side) {
      const std::vector<NeuronContext>& kept = side == 0 ? s.positive : s.negative;
      if (static_cast<int64_t>(kept.size()) > contexts_) {
        throw bad_file("the atlas's record keeps more contexts per neuron than its options say");
      }
      const auto base = static_cast<size_t>(j * capacity_);
      for (size_t i = 0; i < kept.size(); ++i) {
        const NeuronContext& c = kept[i];
        const size_t e = base + i;
        if (static_cast<int64_t>(c.window.size()) > slots_) {
          throw bad_file("the atlas's record has a context window wider than its options say");
        }
        value_[side][e] = c.activation;
        scale_[side][e] = c.window_scale;
        chunk_[side][e] = c.chunk;
        offset_[side][e] = c.offset;
        window_start_[side][e] = c.window_start;
        window_len_[side][e] = static_cast<int32_t>(c.window.size());
        std::copy(c.window.begin(), c.window.end(),
                  window_values_[side].begin() + static_cast<std::ptrdiff_t>(e * static_cast<size_t>(slots_)));
      }
      count_[side][static_cast<size_t>(j)] = static_cast<int32_t>(kept.size());
      float threshold = 0;
      if (static_cast<int64_t>(kept.size()) == contexts_) threshold = kept.back().activation;
      threshold_[side][static_cast<size_t>(j)] = threshold;
    }
  }
}

}  // namespace neuronlens

#include "backends/cpu/logit_panels.h"

#include <algorithm>
#include <cstdlib>
#include <new>

namespace neuronlens::cpu {

template <typename T>
void AlignedBuffer<T>::Free::operator()(T* p) const {
  std::free(p);
}

template <typename T>
void AlignedBuffer<T>::resize(int64_t n) {
  if (n <= capacity_) return;
  const auto bytes = static_cast<size_t>((n * static_cast<int64_t>(sizeof(T)) + 63) / 64 * 64);
  auto* p = static_cast<T*>(std::aligned_alloc(64, bytes));
  if (!p) throw std::bad_alloc();
  data_.reset(p);
  capacity_ = n;
}

template class AlignedBuffer<float>;
template class AlignedBuffer<uint32_t>;

namespace {

// Row r's word t in bf16 pairs: elements 2t (low half) and 2t + 1 (high).
uint32_t bf16_pair(const float* row, int64_t k, int64_t t) {
  const uint32_t lo = to_bf16(row[2 * t]);
  const uint32_t hi = 2 * t + 1 < k ? to_bf16(row[2 * t + 1]) : 0u;
  return lo | (hi << 16);
}

// Packs rows [0, m) of src into panels [panels][depth][rows_per_panel];
// `word(row, t)` gives a row's word t. Rows past m are zero.
template <typename Word, typename WordOf>
void pack_panels(Word* out, int64_t m, int64_t depth, int64_t rows_per_panel, WordOf word, bool parallel) {
  const int64_t panels = (m + rows_per_panel - 1) / rows_per_panel;
#pragma omp parallel for schedule(static) if (parallel)
  for (int64_t p = 0; p < panels; ++p) {
    Word* dst = out + p * depth * rows_per_panel;
    for (int64_t r = 0; r < rows_per_panel; ++r) {
      const int64_t row = p * rows_per_panel + r;
      for (int64_t t = 0; t < depth; ++t) dst[t * rows_per_panel + r] = row < m ? word(row, t) : Word{0};
    }
  }
}

}  // namespace

void RhsPanels::pack_f32(const float* b, int64_t n, int64_t k, int64_t ldb, int64_t nr) {
  is_bf16_ = false;
  n_ = n, k_ = k, depth_ = k, nr_ = nr;
  f32_.resize(panels() * depth_ * nr_);
  pack_panels(f32_.data(), n, depth_, nr, [&](int64_t row, int64_t t) { return b[row * ldb + t]; }, true);
}

void RhsPanels::pack_bf16(const float* b, int64_t n, int64_t k, int64_t ldb, int64_t nr) {
  is_bf16_ = true;
  n_ = n, k_ = k, depth_ = (k + 1) / 2, nr_ = nr;
  bf16_.resize(panels() * depth_ * nr_);
  pack_panels(bf16_.data(), n, depth_, nr, [&](int64_t row, int64_t t) { return bf16_pair(b + row * ldb, k, t); },
              true);
}

float RhsPanels::at(int64_t row, int64_t j) const {
  const int64_t p = row / nr_, r = row % nr_;
  if (!is_bf16_) return f32_.data()[(p * depth_ + j) * nr_ + r];
  const uint32_t w = bf16_.data()[(p * depth_ + j / 2) * nr_ + r];
  return from_bf16(static_cast<uint16_t>(j % 2 ? w >> 16 : w & 0xffffu));
}

int64_t RhsPanels::bytes() const { return panels() * depth_ * nr_ * 4; }

void LhsPanels::pack_f32(const float* a, int64_t m, int64_t k, int64_t lda, int64_t mr) {
  m_ = m, mr_ = mr;
  f32_.resize(panels() * k * mr);
  pack_panels(f32_.data(), m, k, mr, [&](int64_t row, int64_t t) { return a[row * lda + t]; }, false);
}

void LhsPanels::pack_bf16(const float* a, int64_t m, int64_t k, int64_t lda, int64_t mr) {
  m_ = m, mr_ = mr;
  const int64_t k2 = (k + 1) / 2;
  bf16_.resize(panels() * k2 * mr);
  pack_panels(bf16_.data(), m, k2, mr, [&](int64_t row, int64_t t) { return bf16_pair(a + row * lda, k, t); },
              false);
}

}  // namespace neuronlens::cpu

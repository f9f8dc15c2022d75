// The fused decode: for a block of normalised vectors A [nb, d], walk the LM
// head W_U [V, d] in vocabulary tiles; each tile's logits C = A · W_tile^T
// come from the decode backend (logit_backend.h), with a bound on their
// error, and are folded at once into every vector's online softmax and
// top-k candidates (bounded_fold.h). The candidates are then re-scored with
// float64 dot products, so the reported ids, logits and order are those of
// the exact computation up to float64 rounding, whatever the backend's
// precision and summation order.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "backends/cpu/logit_fold.h"
#include "backends/cpu/omp_exceptions.h"
#include "decode/bounded_fold.h"
#include "decode/logit_backend.h"
#include "model/finite_weights.h"
#include "model/norm_weight.h"
#include "neuronlens/decode.h"
#include "neuronlens/error.h"

namespace neuronlens {
namespace {

using decode_detail::BoundedFold;
using decode_detail::LmHead;
using decode_detail::TileSink;

// Maps take the backend's whole head packed once; calls with fewer vectors
// (find, show) pack each tile as they go.
constexpr int64_t kPrepareMinVectors = 1024;

// z, or cap * tanh(z / cap) for a soft-capped family (cap > 0).
double soft_capped(double z, double cap) { return cap > 0 ? cap * std::tanh(z / cap) : z; }

// Counts, for each vector of a block, the tokens whose exact logit exceeds
// its threshold: a bulk logit beyond the bound on either side decides, one
// within it is re-scored in float64.
class CountAbove final : public TileSink {
 public:
  CountAbove(const float* vectors, const double* thresholds, const LmHead& head, double softcap, int64_t* counts)
      : vectors_(vectors), thresholds_(thresholds), head_(head), softcap_(softcap), counts_(counts) {}

  void add(int64_t i, const float* row, int64_t cols, int64_t v0, float bound) override {
    const double th = thresholds_[i];
    const double b = bound + (softcap_ > 0 ? std::ldexp(softcap_, -20) : 0.0);
    int64_t above = 0;
    for (int64_t j = 0; j < cols; ++j) {
      const double z = soft_capped(row[j], softcap_);
      if (z > th + b) {
        ++above;
      } else if (z >= th - b) {
        const double exact =
            soft_capped(cpu::dot_f64(vectors_ + i * head_.d, head_.rows + (v0 + j) * head_.d, head_.d), softcap_);
        above += exact > th;
      }
    }
    counts_[i] += above;
  }

 private:
  const float* vectors_;
  const double* thresholds_;
  const LmHead& head_;
  double softcap_;
  int64_t* counts_;
};

}  // namespace

struct LmHeadDecoder::Impl {
  Impl(const Model& model, DecodeSettings settings);

  LmHead head() const { return {lm_head_.get(), vocab_size_, d_model_}; }
  void normalize(float* vectors, int64_t n) const;
  // Runs `work(first, count)` over blocks of the backend's size, in parallel,
  // calling on_progress between rounds.
  template <typename Work>
  void for_blocks(int64_t n, const std::function<void(int64_t)>& on_progress, Work work) const;
  std::vector<NeuronDecoding> decode_normalized(const float* vectors, int64_t n,
                                                const std::function<void(int64_t)>& on_progress) const;
  void token_logits(const float* vectors, int64_t n, const std::vector<int32_t>& tokens, double* out) const;
  std::vector<int64_t> count_logits_above(const float* vectors, int64_t n, const double* thresholds) const;

  DecodeSettings settings_;
  int64_t vocab_size_ = 0;
  int64_t d_model_ = 0;
  double rms_eps_ = 1e-5;
  double final_softcap_ = 0;  // Gemma 2's cap on the final logits; 0 = none
  // [V, d]; not zero-filled: the parallel dequantisation is each page's first
  // touch, where a vector's fill would fault in gigabytes on one thread.
  std::unique_ptr<float[]> lm_head_;
  std::vector<float> norm_weight_;  // [d]: the final norm's γ as applied
  std::unique_ptr<decode_detail::LogitBackend> backend_;
};

LmHeadDecoder::Impl::Impl(const Model& model, DecodeSettings settings) : settings_(std::move(settings)) {
  const ModelConfig& c = model.config();
  if (settings_.top_k < 1 || settings_.top_k > 1000) {
    throw bad_input("top-k is " + std::to_string(settings_.top_k) + ", expected 1 to 1000");
  }
  if (settings_.top_k > c.vocab_size) {
    throw bad_input("top-k " + std::to_string(settings_.top_k) + " is larger than the vocabulary (" +
                    std::to_string(c.vocab_size) + ")");
  }
  vocab_size_ = c.vocab_size;
  d_model_ = c.d_model;
  rms_eps_ = c.rms_norm_eps;
  const bool embedding = settings_.matrix == DecodeMatrix::TokenEmbedding;
  if (embedding) settings_.norm = NormMode::None;
  final_softcap_ = embedding ? 0.0 : c.final_softcap;
  choose_decode_backend(settings_);  // refused now, before the big copy, if this CPU cannot run it
  const TensorView& head = embedding ? model.weight(WeightKind::TokenEmbedding) : model.lm_head();
  lm_head_ = std::make_unique_for_overwrite<float[]>(static_cast<size_t>(vocab_size_ * d_model_));
  // Dequantise in row blocks, in parallel: this is the one big copy a map makes.
  constexpr int64_t kRows = 1024;
  cpu::FirstException failure;
#pragma omp parallel for schedule(dynamic)
  for (int64_t first = 0; first < vocab_size_; first += kRows) {
    failure.run([&] {
      const int64_t n = std::min(kRows, vocab_size_ - first);
      float* rows = lm_head_.get() + first * d_model_;
      dequantize_rows(head, first, n, rows);
      require_finite(rows, n * d_model_, [&](int64_t at) {
        return std::string(embedding ? "the token embedding's" : "the LM head's") + " row for token " +
               std::to_string(first + at / d_model_);
      });
    });
  }
  failure.rethrow();
  model.weight(WeightKind::OutputNorm);  // throws Error naming it when absent
  norm_weight_ = applied_norm_weight(model, WeightKind::OutputNorm);
  backend_ = decode_detail::make_logit_backend(this->head(), settings_);
}

void LmHeadDecoder::Impl::normalize(float* vectors, int64_t n) const {
  if (settings_.norm == NormMode::None) return;
  const int64_t d = d_model_;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float* v = vectors + i * d;
    // RMSNorm as Llama computes it: v / sqrt(mean(v^2) + eps) * gamma, here in
    // float64 so the reference comparison measures the product, not the norm.
    double sum_sq = 0;
    for (int64_t j = 0; j < d; ++j) sum_sq += static_cast<double>(v[j]) * v[j];
    const double inv_rms = 1.0 / std::sqrt(sum_sq / static_cast<double>(d) + rms_eps_);
    for (int64_t j = 0; j < d; ++j) v[j] = static_cast<float>(v[j] * inv_rms * norm_weight_[j]);
  }
}

template <typename Work>
void LmHeadDecoder::Impl::for_blocks(int64_t n, const std::function<void(int64_t)>& on_progress, Work work) const {
  // Threads work on separate blocks of vectors, each sweeping the whole head
  // and folding logits it just computed, in its own cache. Four blocks per
  // thread per round even out the threads' speeds, which vary on a shared
  // machine.
  const int threads = std::max(1, omp_get_max_threads());
  const int64_t block = backend_->block_vectors();
  const int64_t round = block * threads * 4;
  for (int64_t first = 0; first < n; first += round) {
    const int64_t in_round = std::min(round, n - first);
    const int64_t blocks = (in_round + block - 1) / block;
    cpu::FirstException failure;
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int64_t b = 0; b < blocks; ++b) {
      failure.run([&] {
        const int64_t start = first + b * block;
        work(start, std::min(block, first + in_round - start));
      });
    }
    failure.rethrow();
    if (on_progress) on_progress(first + in_round);
  }
}

std::vector<NeuronDecoding> LmHeadDecoder::Impl::decode_normalized(
    const float* vectors, int64_t n, const std::function<void(int64_t)>& on_progress) const {
  std::vector<NeuronDecoding> results(static_cast<size_t>(n));
  if (n >= kPrepareMinVectors) backend_->prepare();  // before the threads start: it packs in parallel
  const int top_k = settings_.top_k;
  for_blocks(n, on_progress, [&](int64_t start, int64_t count) {
    const float* block = vectors + start * d_model_;
    // NaN logits would fold into a meaningless top-k.
    require_finite(
        block, count * d_model_, [&](int64_t at) { return "vector " + std::to_string(start + at / d_model_); },
        ErrorKind::BadInput, " (a vector to decode must be finite)");
    BoundedFold fold(count, top_k, final_softcap_);
    backend_->fold(block, count, fold);
    for (int64_t i = 0; i < count; ++i) fold.finish(i, block + i * d_model_, head(), results[static_cast<size_t>(start + i)]);
  });
  return results;
}

void LmHeadDecoder::Impl::token_logits(const float* vectors, int64_t n, const std::vector<int32_t>& tokens,
                                       double* out) const {
  for (int32_t t : tokens) {
    if (t < 0 || t >= vocab_size_) {
      throw bad_input("token id " + std::to_string(t) + " is out of range (vocabulary size " +
                      std::to_string(vocab_size_) + ")");
    }
  }
  const int64_t d = d_model_, m = static_cast<int64_t>(tokens.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      out[i * m + j] = soft_capped(
          cpu::dot_f64(vectors + i * d, lm_head_.get() + static_cast<int64_t>(tokens[j]) * d, d), final_softcap_);
    }
  }
}

std::vector<int64_t> LmHeadDecoder::Impl::count_logits_above(const float* vectors, int64_t n,
                                                             const double* thresholds) const {
  std::vector<int64_t> counts(static_cast<size_t>(n), 0);
  if (n >= kPrepareMinVectors) backend_->prepare();
  const LmHead h = head();
  for_blocks(n, {}, [&](int64_t start, int64_t count) {
    CountAbove sink(vectors + start * d_model_, thresholds + start, h, final_softcap_, counts.data() + start);
    backend_->fold(vectors + start * d_model_, count, sink);
  });
  return counts;
}

LmHeadDecoder::LmHeadDecoder(const Model& model, DecodeSettings settings)
    : impl_(std::make_unique<Impl>(model, std::move(settings))) {}
LmHeadDecoder::LmHeadDecoder(LmHeadDecoder&&) noexcept = default;
LmHeadDecoder& LmHeadDecoder::operator=(LmHeadDecoder&&) noexcept = default;
LmHeadDecoder::~LmHeadDecoder() = default;

const DecodeSettings& LmHeadDecoder::settings() const { return impl_->settings_; }
int64_t LmHeadDecoder::vocab_size() const { return impl_->vocab_size_; }
int64_t LmHeadDecoder::d_model() const { return impl_->d_model_; }
void LmHeadDecoder::normalize(float* vectors, int64_t n) const { impl_->normalize(vectors, n); }
std::vector<NeuronDecoding> LmHeadDecoder::decode_normalized(const float* vectors, int64_t n,
                                                             const std::function<void(int64_t)>& on_progress) const {
  return impl_->decode_normalized(vectors, n, on_progress);
}
std::string_view LmHeadDecoder::backend_name() const { return impl_->backend_->name(); }
Precision LmHeadDecoder::precision() const { return impl_->backend_->precision(); }
std::string LmHeadDecoder::bound_definition() const { return impl_->backend_->bound_definition(); }
void LmHeadDecoder::prepare_for(int64_t n) const {
  if (n >= kPrepareMinVectors) impl_->backend_->prepare();
}
void LmHeadDecoder::token_logits(const float* vectors, int64_t n, const std::vector<int32_t>& tokens,
                                 double* out) const {
  impl_->token_logits(vectors, n, tokens, out);
}
std::vector<int64_t> LmHeadDecoder::count_logits_above(const float* vectors, int64_t n,
                                                       const double* thresholds) const {
  return impl_->count_logits_above(vectors, n, thresholds);
}

namespace {

// Rows [F, d] times gamma [d], element by element.
void scale_rows(std::vector<float>& rows, const std::vector<float>& gamma) {
  const auto d = static_cast<int64_t>(gamma.size());
  const auto n = static_cast<int64_t>(rows.size()) / d;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < d; ++j) rows[static_cast<size_t>(i * d + j)] *= gamma[static_cast<size_t>(j)];
  }
}

}  // namespace

std::string decode_definition(const ModelConfig& c, const DecodeSettings& s) {
  std::string norm = s.norm == NormMode::None ? "v"
                     : c.norm_weight_offset != 0.0f
                         ? "rmsnorm(v) * (1 + output_norm)"
                         : "rmsnorm(v) * output_norm";
  std::string logits = "W_U . " + norm;
  if (c.final_softcap > 0) logits = "cap * tanh(" + logits + " / cap), cap = " + std::to_string(c.final_softcap);
  std::string text = "p = softmax(" + logits + ") (arXiv 2501.02688); down: v = " +
                     std::string(c.post_norms ? "ffn_post_norm * w_down column (what reaches the residual stream)"
                                              : "w_down column") +
                     "; up/gate: v = " +
                     std::string(s.read_norm == ReadNorm::Ffn && c.pre_norms ? "ffn_norm * row" : "row");
  return text;
}

void load_neuron_vectors(const Model& model, VectorKind kind, int64_t layer, std::vector<float>& out,
                         ReadNorm read_norm) {
  const ModelConfig& c = model.config();
  const int64_t F = c.d_ffn, d = c.d_model;
  out.resize(static_cast<size_t>(F * d));
  if (kind == VectorKind::Down) {
    // down_proj is [d, F]: dequantise it, then transpose so column i (what
    // neuron i writes) becomes row i.
    const TensorView& w = model.weight(WeightKind::FfnDown, layer);
    std::vector<float> dense(static_cast<size_t>(d * F));
    dequantize_rows(w, 0, d, dense.data());
#pragma omp parallel for schedule(static)
    for (int64_t i = 0; i < F; ++i) {
      for (int64_t j = 0; j < d; ++j) out[static_cast<size_t>(i * d + j)] = dense[static_cast<size_t>(j * F + i)];
    }
    // The post-norm rescales the whole output by one positive factor and
    // then by γ_post per dimension: neuron i's direction is γ_post ⊙ column i.
    if (c.post_norms) scale_rows(out, applied_norm_weight(model, WeightKind::FfnPostNorm, layer));
  } else {
    const TensorView& w = model.weight(kind == VectorKind::Up ? WeightKind::FfnUp : WeightKind::FfnGate, layer);
    dequantize_rows(w, 0, F, out.data());
    if (read_norm == ReadNorm::Ffn && c.pre_norms) {
      scale_rows(out, applied_norm_weight(model, WeightKind::FfnNorm, layer));
    }
  }
  require_finite(out.data(), F * d, [&](int64_t at) {
    return "layer " + std::to_string(layer) + " " + std::string(vector_kind_name(kind)) + " vector of neuron " +
           std::to_string(at / d);
  });
}

}  // namespace neuronlens

// The fused decode: for a block of normalised vectors A [nb, d], walk the LM
// head W_U [V, d] in vocabulary tiles; each tile's logits C = A · W_tile^T
// [nb, vt] come from a float32 product (BLAS sgemm, our packed kernel, or
// one level of Strassen on either; see LogitProduct) and are folded at once
// into every vector's online softmax and top-k. The top candidates are then re-scored
// with float64 dot products, so the reported logits and order are exact up to
// float64 rounding, whatever the GEMM's summation order.
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <utility>

#include "backends/cpu/gemm.h"
#include "backends/cpu/packed_gemm.h"
#include "backends/cpu/strassen.h"
#include "decode/online_softmax.h"
#include "model/norm_weight.h"
#include "neuronlens/decode.h"
#include "neuronlens/error.h"

namespace neuronlens {
namespace {

using decode_detail::OnlineSoftmax;
using decode_detail::TopK;

constexpr int64_t kVectorBlock = 1024;    // vectors per GEMM (and per thread task)
constexpr int64_t kVocabTile = 4096;     // vocabulary rows per GEMM
// Vocabulary rows per tile on the Strassen path. Each tile's seven products
// take 7/4 x (block/2) x tile floats per thread (14 MiB at 1024 x 2048); the
// width made no difference we could measure between 1024 and 4096.
constexpr int64_t kStrassenTile = 2048;
// The Packed path: blocks of this many vectors sweep the whole vocabulary,
// this many tokens at a time, so that a block's panels (96 x d floats) and
// its logits [96, 256] (96 KiB) stay in the core's L2 while they are made
// and folded.
constexpr int64_t kPackedVectors = 96;
constexpr int64_t kPackedTile = 256;
// The PackedStrassen path: blocks of 192 vectors (96 rows per half, so each
// B panel chunk serves 16 kernel calls) and tiles of 512 tokens (products
// [96, 256]); 96-vector blocks and 256-token tiles measured slower
// (bench/packed_gemm_bench).
constexpr int64_t kPackedStrassenVectors = 192;
constexpr int64_t kPackedStrassenTile = 512;
// LogitProduct::Auto's choice (see decode.h for the measurements).
constexpr int64_t kAutoStrassenMinDModel = 2048;
constexpr int64_t kAutoMinVectors = 1024;
constexpr int kExtraCandidates = 8;
// Relative gap under which a float32 GEMM logit and a float64 one count as
// equal: well above float32 summation error over d <= 16384 terms of size ~1.
constexpr double kTieTolerance = 1e-4;      // float32 near-ties re-scored in float64

// Turns one vector's folded statistics into its decoding: the candidates are
// re-scored in float64 and re-ranked (higher logit, then lower id), and their
// float32 terms in the softmax sums become the float64 ones too, so the
// stored probabilities agree with the stored logits.
// z, or cap * tanh(z / cap) for a soft-capped family (cap > 0).
double soft_capped(double z, double cap) { return cap > 0 ? cap * std::tanh(z / cap) : z; }

void finish_decoding(const float* vec, int64_t d, const float* head, int top_k, double softcap, OnlineSoftmax& sm,
                     const TopK& top, NeuronDecoding& r) {
  std::vector<std::pair<double, int32_t>> scored;
  for (const TopK::Item& item : top.items()) {
    const double z64 = soft_capped(cpu::dot_f64(vec, head + static_cast<int64_t>(item.id) * d, d), softcap);
    sm.replace_term(item.logit, z64);
    scored.emplace_back(z64, item.id);
  }
  std::sort(scored.begin(), scored.end(), [](const auto& x, const auto& y) {
    return x.first > y.first || (x.first == y.first && x.second < y.second);
  });
  r.logsumexp = sm.logsumexp();
  r.entropy = sm.entropy();
  scored.resize(static_cast<size_t>(top_k));
  r.top_ids.clear();
  r.top_logits.clear();
  r.topk_mass = 0;
  for (const auto& [logit, id] : scored) {
    r.top_ids.push_back(id);
    r.top_logits.push_back(logit);
    r.topk_mass += std::exp(logit - r.logsumexp);
  }
}

// Soft-caps a row of logits in place (cap > 0).
void soft_cap_row(float* row, int64_t cols, double cap) {
  const auto c = static_cast<float>(cap);
  for (int64_t j = 0; j < cols; ++j) row[j] = c * std::tanh(row[j] / c);
}

// The running softmax and top-k candidates of each vector of one block,
// fed a row of logits at a time (soft-capped first where the model caps).
class BlockFold {
 public:
  BlockFold(int64_t n, int candidates, double softcap)
      : softcap_(softcap), softmax_(static_cast<size_t>(n)), top_(static_cast<size_t>(n), TopK(candidates)) {}

  // Logits of tokens [v0, v0 + cols) for vector i.
  void add(int64_t i, const float* row, int64_t cols, int64_t v0) {
    if (softcap_ > 0) {
      thread_local std::vector<float> capped;
      capped.assign(row, row + cols);
      soft_cap_row(capped.data(), cols, softcap_);
      row = capped.data();
    }
    softmax_[static_cast<size_t>(i)].add_tile(row, cols);
    top_[static_cast<size_t>(i)].add_tile(row, cols, static_cast<int32_t>(v0));
  }
  OnlineSoftmax& softmax(int64_t i) { return softmax_[static_cast<size_t>(i)]; }
  const TopK& top(int64_t i) const { return top_[static_cast<size_t>(i)]; }

 private:
  double softcap_;
  std::vector<OnlineSoftmax> softmax_;
  std::vector<TopK> top_;
};

// Tokens [v0, v0 + cols) for vectors [n, d], which are rows first_row... of
// the block: one sgemm into logits [n, cols], folded row by row.
void fold_by_sgemm(const float* vectors, int64_t n, int64_t d, const float* lm_head, int64_t v0, int64_t cols,
                   int64_t first_row, BlockFold& fold, std::vector<float>& logits) {
  logits.resize(static_cast<size_t>(n * cols));
  cpu::gemm_abt(n, cols, d, vectors, d, lm_head + v0 * d, d, logits.data(), cols);
  for (int64_t i = 0; i < n; ++i) fold.add(first_row + i, logits.data() + i * cols, cols, v0);
}

// Packed: blocks of kPackedVectors vectors sweep the vocabulary in tiles of
// kPackedTile tokens, each tile's logits made by our kernel into a buffer
// that stays in L2 and folded from there.
void fold_packed(const cpu::RhsPanels& head, const float* vectors, int64_t n, int64_t d, int64_t V,
                 BlockFold& fold, std::vector<float>& logits) {
  thread_local cpu::LhsPanels panels;
  for (int64_t i0 = 0; i0 < n; i0 += kPackedVectors) {
    const int64_t m = std::min(kPackedVectors, n - i0);
    panels.pack(vectors + i0 * d, m, d, d);
    logits.resize(static_cast<size_t>(panels.padded_rows() * kPackedTile));  // [padded m, tile]
    for (int64_t v0 = 0; v0 < V; v0 += kPackedTile) {
      const int64_t cols = std::min(kPackedTile, V - v0);
      cpu::packed_product(panels, head, v0, cols, logits.data(), kPackedTile);
      for (int64_t i = 0; i < m; ++i) fold.add(i0 + i, logits.data() + i * kPackedTile, cols, v0);
    }
  }
}

// Folds a block's C rows from Strassen's seven products: row i and row h + i
// (of the block's m) together, as tokens [v0, v0 + cols), into rows
// first_row... of `fold`.
void fold_strassen_rows(const cpu::StrassenProducts& products, int64_t h, int64_t m, int64_t first_row, int64_t cols,
                        int64_t v0, BlockFold& fold) {
  thread_local std::vector<float> upper, lower;  // C's rows i and h + i [cols]
  upper.resize(static_cast<size_t>(cols));
  lower.resize(static_cast<size_t>(cols));
  for (int64_t i = 0; i < h; ++i) {
    products.rows(i, upper.data(), lower.data());
    fold.add(first_row + i, upper.data(), cols, v0);
    if (h + i < m) fold.add(first_row + h + i, lower.data(), cols, v0);
  }
}

// PackedStrassen: blocks of kPackedStrassenVectors vectors; each full tile's
// seven products by our kernel, C's rows combined two at a time (row i and
// h + i) and folded at once; the vocabulary's last, partial tile by sgemm.
void fold_packed_strassen(const cpu::PackedStrassenRhs& head, const float* lm_head, const float* vectors, int64_t n,
                          int64_t d, int64_t V, BlockFold& fold, std::vector<float>& logits) {
  const int64_t tile = head.tile_rows(), full = head.tiles() * tile;
  thread_local cpu::StrassenLhs lhs;
  thread_local cpu::PackedStrassenLhs packed_lhs;
  thread_local cpu::StrassenProducts products;
  for (int64_t i0 = 0; i0 < n; i0 += kPackedStrassenVectors) {
    const int64_t m = std::min(kPackedStrassenVectors, n - i0);
    lhs.prepare(vectors + i0 * d, m, d, d);
    packed_lhs.prepare(lhs);
    for (int64_t t = 0; t < head.tiles(); ++t) {
      products.compute(packed_lhs, head, t);
      fold_strassen_rows(products, lhs.half_rows(), m, i0, tile, t * tile, fold);
    }
    if (full < V) fold_by_sgemm(vectors + i0 * d, m, d, lm_head, full, V - full, i0, fold, logits);
  }
}

}  // namespace

struct StrassenHead {
  std::vector<cpu::StrassenRhs> tiles;  // tile t covers vocabulary rows [t * kStrassenTile, ...)
};

namespace {

// Gemm (sums == nullptr): each vocabulary tile's logits [n, vt] come from one
// sgemm and are folded at once. Strassen: a tile's logits come from seven
// sgemms instead, and C's rows are folded two at a time as they are
// combined; a tile of odd width (only ever the last) takes the sgemm.
void fold_by_blas(const StrassenHead* sums, const float* lm_head, const float* vectors, int64_t n, int64_t d,
                  int64_t V, BlockFold& fold, std::vector<float>& logits) {
  const int64_t vt = std::min(sums ? kStrassenTile : kVocabTile, V);
  // Each OpenMP worker keeps its Strassen buffers (the products take tens of
  // MiB) from call to call: allocating them for every layer showed up in
  // perf as page faults.
  thread_local cpu::StrassenLhs lhs;
  thread_local cpu::StrassenProducts products;
  if (sums) lhs.prepare(vectors, n, d, d);
  for (int64_t v0 = 0; v0 < V; v0 += vt) {
    const int64_t cols = std::min(vt, V - v0);
    const cpu::StrassenRhs* rhs = sums ? &sums->tiles[static_cast<size_t>(v0 / vt)] : nullptr;
    if (rhs && rhs->rows() == cols) {
      products.compute(lhs, *rhs);
      fold_strassen_rows(products, lhs.half_rows(), n, 0, cols, v0, fold);
    } else {
      fold_by_sgemm(vectors, n, d, lm_head, v0, cols, 0, fold, logits);
    }
  }
}

}  // namespace

namespace {

// Each option's names, one table per enum, read both ways.
template <typename E>
using NameTable = std::span<const std::pair<E, std::string_view>>;

constexpr std::pair<VectorKind, std::string_view> kKindNames[] = {
    {VectorKind::Up, "up"}, {VectorKind::Gate, "gate"}, {VectorKind::Down, "down"}};
constexpr std::pair<NormMode, std::string_view> kNormNames[] = {{NormMode::Final, "final"}, {NormMode::None, "none"}};
constexpr std::pair<ReadNorm, std::string_view> kReadNormNames[] = {{ReadNorm::None, "none"}, {ReadNorm::Ffn, "ffn"}};
constexpr std::pair<LogitProduct, std::string_view> kProductNames[] = {{LogitProduct::Auto, "auto"},
                                                   {LogitProduct::Gemm, "gemm"},
                                                   {LogitProduct::Strassen, "strassen"},
                                                   {LogitProduct::Packed, "packed"},
                                                   {LogitProduct::PackedStrassen, "packed-strassen"}};

template <typename E>
std::string_view name_in(NameTable<E> table, E value) {
  for (const auto& [v, name] : table) {
    if (v == value) return name;
  }
  return "?";
}

// The value named `name`, or an Error "unknown <what> 'x' (expected a, b or c)".
template <typename E>
E value_in(NameTable<E> table, std::string_view name, std::string_view what) {
  std::string expected;
  size_t i = 0;
  for (const auto& [v, n] : table) {
    if (n == name) return v;
    expected += (i == 0 ? "" : i + 1 == table.size() ? " or " : ", ") + std::string(n);
    ++i;
  }
  throw Error("unknown " + std::string(what) + " '" + std::string(name) + "' (expected " + expected + ")");
}

}  // namespace

std::string_view vector_kind_name(VectorKind kind) { return name_in<VectorKind>(kKindNames, kind); }
VectorKind vector_kind_from_name(std::string_view name) {
  return value_in<VectorKind>(kKindNames, name, "neuron kind");
}
std::string_view norm_mode_name(NormMode mode) { return name_in<NormMode>(kNormNames, mode); }
NormMode norm_mode_from_name(std::string_view name) { return value_in<NormMode>(kNormNames, name, "norm"); }
std::string_view read_norm_name(ReadNorm mode) { return name_in<ReadNorm>(kReadNormNames, mode); }
ReadNorm read_norm_from_name(std::string_view name) {
  return value_in<ReadNorm>(kReadNormNames, name, "read norm");
}
std::string_view logit_product_name(LogitProduct product) { return name_in<LogitProduct>(kProductNames, product); }
LogitProduct logit_product_from_name(std::string_view name) {
  return value_in<LogitProduct>(kProductNames, name, "product");
}

// Everything the decoder holds: the dequantised head, the final norm's
// weight and the head's form for each product, made on first use.
struct LmHeadDecoder::Impl {
  Impl(const Model& model, DecodeSettings settings);

  LogitProduct product_for(int64_t n) const;
  void prepare_for(int64_t n) const;
  void normalize(float* vectors, int64_t n) const;
  std::vector<NeuronDecoding> decode_normalized(const float* vectors, int64_t n,
                                                const std::function<void(int64_t)>& on_progress) const;
  void token_logits(const float* vectors, int64_t n, const std::vector<int32_t>& tokens, double* out) const;
  std::vector<int64_t> count_logits_above(const float* vectors, int64_t n, const double* thresholds) const;

  void decode_block(LogitProduct product, const float* vectors, int64_t n, NeuronDecoding* results,
                    std::vector<float>& logits) const;
  const StrassenHead& strassen_sums() const;
  const cpu::RhsPanels& packed_head() const;
  const cpu::PackedStrassenRhs& packed_strassen_head() const;

  DecodeSettings settings_;
  int64_t vocab_size_ = 0;
  int64_t d_model_ = 0;
  double rms_eps_ = 1e-5;
  double final_softcap_ = 0.0;     // 0: none
  std::vector<float> lm_head_;     // [V, d]
  std::vector<float> norm_weight_; // [d], gamma of the final RMSNorm (with the family's offset: Gemma's 1 + γ)
  // The Strassen path's B-side sums of each vocabulary tile (as many floats
  // as the LM head again), made by the first decode that needs them.
  mutable std::once_flag strassen_once_;
  mutable std::shared_ptr<const StrassenHead> strassen_;
  // The Packed path's copy of the LM head in the micro-kernel's panel order.
  mutable std::once_flag packed_once_;
  mutable std::shared_ptr<const cpu::RhsPanels> packed_;
  // The PackedStrassen path's B-side operands.
  mutable std::once_flag packed_strassen_once_;
  mutable std::shared_ptr<const cpu::PackedStrassenRhs> packed_strassen_;
};

LmHeadDecoder::Impl::Impl(const Model& model, DecodeSettings settings) : settings_(settings) {
  const ModelConfig& c = model.config();
  if (settings.top_k < 1 || settings.top_k > 1000) {
    throw Error("top-k is " + std::to_string(settings.top_k) + ", expected 1 to 1000");
  }
  if (settings.top_k > c.vocab_size) {
    throw Error("top-k " + std::to_string(settings.top_k) + " is larger than the vocabulary (" +
                std::to_string(c.vocab_size) + ")");
  }
  vocab_size_ = c.vocab_size;
  d_model_ = c.d_model;
  rms_eps_ = c.rms_norm_eps;
  final_softcap_ = c.final_softcap;
  const TensorView& head = model.lm_head();
  lm_head_.resize(static_cast<size_t>(vocab_size_ * d_model_));
  // Dequantise in row blocks, in parallel: this is the one big copy a map makes.
  constexpr int64_t kRows = 1024;
#pragma omp parallel for schedule(dynamic)
  for (int64_t first = 0; first < vocab_size_; first += kRows) {
    const int64_t n = std::min(kRows, vocab_size_ - first);
    dequantize_rows(head, first, n, lm_head_.data() + first * d_model_);
  }
  model.weight(WeightKind::OutputNorm);  // throws Error naming it when absent
  norm_weight_ = applied_norm_weight(model, WeightKind::OutputNorm);
}

LogitProduct LmHeadDecoder::Impl::product_for(int64_t n) const {
  const bool strassen_fits = cpu::strassen_fits(2, d_model_);
  switch (settings_.product) {
    case LogitProduct::Gemm: return LogitProduct::Gemm;
    case LogitProduct::Strassen: return strassen_fits ? LogitProduct::Strassen : LogitProduct::Gemm;
    case LogitProduct::Packed: return LogitProduct::Packed;
    case LogitProduct::PackedStrassen: return strassen_fits ? LogitProduct::PackedStrassen : LogitProduct::Packed;
    case LogitProduct::Auto:
      // A few vectors (find, show): nothing worth preparing a head for.
      if (n < kAutoMinVectors) return LogitProduct::Gemm;
      if (cpu::packed_gemm_is_fast()) return strassen_fits ? LogitProduct::PackedStrassen : LogitProduct::Packed;
      if (strassen_fits && d_model_ >= kAutoStrassenMinDModel) return LogitProduct::Strassen;
      return LogitProduct::Gemm;
  }
  return LogitProduct::Gemm;
}

void LmHeadDecoder::Impl::prepare_for(int64_t n) const {
  const LogitProduct product = product_for(n);
  if (product == LogitProduct::Strassen) strassen_sums();
  if (product == LogitProduct::Packed) packed_head();
  if (product == LogitProduct::PackedStrassen) packed_strassen_head();
}

namespace {

// The head's form for one product, made by `fill` on first use: once, by
// whichever thread asks first, while the others wait.
template <typename T, typename Fill>
const T& made_once(std::once_flag& once, std::shared_ptr<const T>& slot, Fill fill) {
  std::call_once(once, [&] {
    auto made = std::make_shared<T>();
    fill(*made);
    slot = std::move(made);
  });
  return *slot;
}

}  // namespace

const cpu::PackedStrassenRhs& LmHeadDecoder::Impl::packed_strassen_head() const {
  return made_once(packed_strassen_once_, packed_strassen_, [this](cpu::PackedStrassenRhs& operands) {
    operands.prepare(lm_head_.data(), vocab_size_, d_model_, kPackedStrassenTile);
  });
}

const cpu::RhsPanels& LmHeadDecoder::Impl::packed_head() const {
  return made_once(packed_once_, packed_, [this](cpu::RhsPanels& panels) {
    panels.pack(lm_head_.data(), vocab_size_, d_model_, d_model_);
  });
}

const StrassenHead& LmHeadDecoder::Impl::strassen_sums() const {
  return made_once(strassen_once_, strassen_, [this](StrassenHead& sums) {
    sums.tiles.resize(static_cast<size_t>((vocab_size_ + kStrassenTile - 1) / kStrassenTile));
#pragma omp parallel for schedule(dynamic)
    for (size_t t = 0; t < sums.tiles.size(); ++t) {
      const int64_t v0 = static_cast<int64_t>(t) * kStrassenTile, cols = std::min(kStrassenTile, vocab_size_ - v0);
      // A tile of odd width (only ever the last) stays empty: plain GEMM.
      if (cpu::strassen_fits(cols, d_model_)) {
        sums.tiles[t].prepare(lm_head_.data() + v0 * d_model_, cols, d_model_, d_model_);
      }
    }
  });
}

void LmHeadDecoder::Impl::normalize(float* vectors, int64_t n) const {
  if (settings_.norm == NormMode::None) return;
  const int64_t d = d_model_;
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    float* v = vectors + i * d;
    // RMSNorm as Llama computes it: v / sqrt(mean(v^2) + eps) * gamma, here in
    // float64 so the reference comparison measures the GEMM, not the norm.
    double sum_sq = 0;
    for (int64_t j = 0; j < d; ++j) sum_sq += static_cast<double>(v[j]) * v[j];
    const double inv_rms = 1.0 / std::sqrt(sum_sq / static_cast<double>(d) + rms_eps_);
    for (int64_t j = 0; j < d; ++j) v[j] = static_cast<float>(v[j] * inv_rms * norm_weight_[j]);
  }
}

// Decodes vectors [n, d] (normalised) into results[0..n): one thread's share.
void LmHeadDecoder::Impl::decode_block(LogitProduct product, const float* vectors, int64_t n,
                                 NeuronDecoding* results, std::vector<float>& logits) const {
  const int64_t d = d_model_, V = vocab_size_;
  BlockFold fold(n, static_cast<int>(std::min<int64_t>(settings_.top_k + kExtraCandidates, V)), final_softcap_);
  switch (product) {
    case LogitProduct::Packed: fold_packed(packed_head(), vectors, n, d, V, fold, logits); break;
    case LogitProduct::PackedStrassen:
      fold_packed_strassen(packed_strassen_head(), lm_head_.data(), vectors, n, d, V, fold, logits);
      break;
    case LogitProduct::Strassen: fold_by_blas(&strassen_sums(), lm_head_.data(), vectors, n, d, V, fold, logits); break;
    case LogitProduct::Gemm:
    case LogitProduct::Auto: fold_by_blas(nullptr, lm_head_.data(), vectors, n, d, V, fold, logits); break;
  }
  for (int64_t i = 0; i < n; ++i) {
    finish_decoding(vectors + i * d, d, lm_head_.data(), settings_.top_k, final_softcap_, fold.softmax(i), fold.top(i),
                    results[i]);
  }
}

std::vector<NeuronDecoding> LmHeadDecoder::Impl::decode_normalized(const float* vectors, int64_t n,
                                                             const std::function<void(int64_t)>& on_progress) const {
  std::vector<NeuronDecoding> results(static_cast<size_t>(n));
  // Threads work on separate blocks of vectors, each with a single-threaded
  // GEMM: every thread folds logits it just computed, in its own cache,
  // instead of all threads sharing one GEMM and then one fold.
  const int threads = std::max(1, omp_get_max_threads());
  const cpu::SingleThreadedBlas single_threaded;
  const LogitProduct product = product_for(n);
  prepare_for(n);  // before the threads start: the sums or packed head are made in parallel
  // BLAS products: blocks as large as the GEMM likes, but enough of them to
  // keep every thread busy. Packed products: the size they work in (the
  // head streams once per block either way), so that four blocks per thread
  // per round even out the threads' speeds, which vary on a shared machine.
  int64_t block = std::clamp<int64_t>((n + threads - 1) / threads, 1, kVectorBlock);
  int64_t round = block * threads;
  if (product == LogitProduct::Packed || product == LogitProduct::PackedStrassen) {
    block = product == LogitProduct::Packed ? kPackedVectors : kPackedStrassenVectors;
    round = block * threads * 4;
  }
  std::vector<std::vector<float>> logits(static_cast<size_t>(threads));  // per thread, reused
  for (int64_t first = 0; first < n; first += round) {
    const int64_t in_round = std::min(round, n - first);
    const int64_t blocks = (in_round + block - 1) / block;
#pragma omp parallel for schedule(dynamic) num_threads(threads)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t start = first + b * block;
      const int64_t count = std::min(block, first + in_round - start);
      decode_block(product, vectors + start * d_model_, count, results.data() + start,
                   logits[static_cast<size_t>(omp_get_thread_num())]);
    }
    if (on_progress) on_progress(first + in_round);
  }
  return results;
}

void LmHeadDecoder::Impl::token_logits(const float* vectors, int64_t n, const std::vector<int32_t>& tokens,
                                 double* out) const {
  for (int32_t t : tokens) {
    if (t < 0 || t >= vocab_size_) {
      throw Error("token id " + std::to_string(t) + " is out of range (vocabulary size " + std::to_string(vocab_size_) +
                  ")");
    }
  }
  const int64_t d = d_model_, m = static_cast<int64_t>(tokens.size());
#pragma omp parallel for schedule(static)
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < m; ++j) {
      out[i * m + j] = soft_capped(
          cpu::dot_f64(vectors + i * d, lm_head_.data() + static_cast<int64_t>(tokens[j]) * d, d), final_softcap_);
    }
  }
}

std::vector<int64_t> LmHeadDecoder::Impl::count_logits_above(const float* vectors, int64_t n,
                                                       const double* thresholds) const {
  const int64_t d = d_model_, V = vocab_size_;
  const int64_t vt = std::min(kVocabTile, V);
  std::vector<float> logits(static_cast<size_t>(kVectorBlock * vt));  // [nb, vt]
  std::vector<int64_t> counts(static_cast<size_t>(n), 0);
  for (int64_t first = 0; first < n; first += kVectorBlock) {
    const int64_t nb = std::min(kVectorBlock, n - first);
    for (int64_t v0 = 0; v0 < V; v0 += vt) {
      const int64_t cols = std::min(vt, V - v0);
      cpu::gemm_abt(nb, cols, d, vectors + first * d, d, lm_head_.data() + v0 * d, d, logits.data(), cols);
#pragma omp parallel for schedule(static)
      for (int64_t i = 0; i < nb; ++i) {
        float* row = logits.data() + i * cols;
        if (final_softcap_ > 0) soft_cap_row(row, cols, final_softcap_);
        // A float32 logit within GEMM rounding of the float64 threshold is the
        // token itself or a true tie: not counted as above it.
        const double th = thresholds[first + i];
        const auto t = static_cast<float>(th + kTieTolerance * std::max(1.0, std::abs(th)));
        int64_t above = 0;
        for (int64_t j = 0; j < cols; ++j) above += row[j] > t;
        counts[static_cast<size_t>(first + i)] += above;
      }
    }
  }
  return counts;
}

LmHeadDecoder::LmHeadDecoder(const Model& model, DecodeSettings settings)
    : impl_(std::make_unique<Impl>(model, settings)) {}
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
LogitProduct LmHeadDecoder::product_for(int64_t n) const { return impl_->product_for(n); }
void LmHeadDecoder::prepare_for(int64_t n) const { impl_->prepare_for(n); }
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
    return;
  }
  const TensorView& w = model.weight(kind == VectorKind::Up ? WeightKind::FfnUp : WeightKind::FfnGate, layer);
  dequantize_rows(w, 0, F, out.data());
  if (read_norm == ReadNorm::Ffn && c.pre_norms) scale_rows(out, applied_norm_weight(model, WeightKind::FfnNorm, layer));
}

}  // namespace neuronlens

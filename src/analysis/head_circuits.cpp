// The head circuits' singular directions (neuronlens/head_circuits.h) without
// forming the d x d matrix: with M = Aᵀ B for A, B [head_dim, d] (the head's
// slices of the two projections, one row per head dimension),
//   A Aᵀ = Qa diag(σa²) Qaᵀ and B Bᵀ = Qb diag(σb²) Qbᵀ   (head_dim x head_dim)
// give A = Qa diag(σa) Ua, B = Qb diag(σb) Ub with orthonormal rows Ua, Ub,
// so M = Uaᵀ K Ub with K = diag(σa) Qaᵀ Qb diag(σb), and the SVD of the small
// K (through the eigenvectors of K Kᵀ) is M's. Cost: two head_dim² · d
// products per head (float64 BLAS) and small eigenproblems.
#include "neuronlens/head_circuits.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "backends/cpu/lapack.h"
#include "backends/cpu/omp_exceptions.h"
#include "neuronlens/error.h"
#include "neuronlens/tensor.h"

namespace neuronlens {
namespace {

size_t sz(int64_t n) { return static_cast<size_t>(n); }

// Rows [first, first + count) of a weight, dequantised, as float64 [count, cols].
std::vector<double> weight_rows(const TensorView& t, int64_t first, int64_t count) {
  std::vector<float> f(sz(count * t.row_length()));
  dequantize_rows(t, first, count, f.data());
  return {f.begin(), f.end()};
}

// x [rows, cols] as [cols, rows], in tiles that stay in cache on both sides
// (a column walk of a 4096-wide float64 matrix misses on every element).
std::vector<double> transposed(const std::vector<double>& x, int64_t rows, int64_t cols) {
  constexpr int64_t kTile = 32;
  std::vector<double> out(sz(rows * cols));
  for (int64_t i0 = 0; i0 < rows; i0 += kTile) {
    for (int64_t j0 = 0; j0 < cols; j0 += kTile) {
      for (int64_t i = i0; i < std::min(rows, i0 + kTile); ++i) {
        for (int64_t j = j0; j < std::min(cols, j0 + kTile); ++j) out[sz(j * rows + i)] = x[sz(i * cols + j)];
      }
    }
  }
  return out;
}

// The eigen-decomposition of the Gram matrix X Xᵀ of X [hd, d]: σ (the
// singular values of X, descending) and the matching eigenvectors [hd, hd]
// as rows, keeping only σ above a relative floor (the rest span nothing M
// can reach, and dividing by them would only amplify rounding).
struct GramBasis {
  std::vector<double> sigma;    // [r]
  std::vector<double> vectors;  // [r, hd]
};

GramBasis gram_basis(const cpu::OneThreadBlas& blas, const double* x, int64_t hd, int64_t d) {
  std::vector<double> gram(sz(hd * hd)), values;
  cpu::gemm_abt_f64(blas, hd, hd, d, x, x, gram.data());
  cpu::symmetric_eigen(blas, hd, gram, values);
  GramBasis basis;
  const double largest = std::max(0.0, values.back());
  for (int64_t i = hd - 1; i >= 0; --i) {  // descending
    const double lambda = values[sz(i)];
    if (!(lambda > largest * 1e-24) || lambda <= 0) break;
    basis.sigma.push_back(std::sqrt(lambda));
    basis.vectors.insert(basis.vectors.end(), gram.begin() + i * hd, gram.begin() + (i + 1) * hd);
  }
  return basis;
}

// xᵀ c for x [hd, d], c [hd]: a vector in model space [d].
std::vector<double> combine_rows(const double* x, int64_t hd, int64_t d, const std::vector<double>& c) {
  std::vector<double> out(sz(d), 0.0);
  for (int64_t j = 0; j < hd; ++j) {
    const double cj = c[sz(j)];
    const double* row = x + j * d;
    for (int64_t i = 0; i < d; ++i) out[sz(i)] += cj * row[i];
  }
  return out;
}

// Σ_i (weights[i] / σ[i]) · basis vector i: the head-dimension coefficients
// of a unit vector of X's row space.
std::vector<double> coefficients(const GramBasis& b, int64_t hd, const double* weights) {
  std::vector<double> c(sz(hd), 0.0);
  for (size_t i = 0; i < b.sigma.size(); ++i) {
    const double w = weights[i] / b.sigma[i];
    for (int64_t j = 0; j < hd; ++j) c[sz(j)] += w * b.vectors[i * sz(hd) + sz(j)];
  }
  return c;
}

std::vector<float> to_float(const std::vector<double>& v) { return {v.begin(), v.end()}; }

// The top `rank` directions of head h's circuit M = Aᵀ B, for its left side
// a [hd, d] and its KV head's right side b [hd, d] with b's Gram basis, into
// out [rank].
void head_directions(const cpu::OneThreadBlas& blas, int64_t h, const double* a, const double* b,
                     const GramBasis& b_basis, int64_t hd, int64_t d, int rank, HeadDirection* out) {
  const GramBasis a_basis = gram_basis(blas, a, hd, d);
  const auto ra = static_cast<int64_t>(a_basis.sigma.size()), rb = static_cast<int64_t>(b_basis.sigma.size());
  // K [ra, rb] = diag(σa) Qaᵀ Qb diag(σb); its left singular vectors are
  // the eigenvectors of K Kᵀ [ra, ra].
  std::vector<double> k(sz(ra * rb));
  for (int64_t i = 0; i < ra; ++i) {
    for (int64_t j = 0; j < rb; ++j) {
      double dot = 0;
      for (int64_t e = 0; e < hd; ++e) dot += a_basis.vectors[sz(i * hd + e)] * b_basis.vectors[sz(j * hd + e)];
      k[sz(i * rb + j)] = a_basis.sigma[sz(i)] * dot * b_basis.sigma[sz(j)];
    }
  }
  std::vector<double> kkt(sz(ra * ra)), s2;
  cpu::gemm_abt_f64(blas, ra, ra, rb, k.data(), k.data(), kkt.data());
  cpu::symmetric_eigen(blas, ra, kkt, s2);
  for (int r = 0; r < rank; ++r) {
    HeadDirection& dir = out[r];
    dir.head = h;
    dir.rank = r;
    const int64_t at = ra - 1 - r;  // eigenvalues ascend
    if (at < 0 || s2[sz(at)] <= 0) {
      // M has rank below `rank`: the remaining directions are zero.
      dir.left.assign(sz(d), 0.0f);
      dir.right.assign(sz(d), 0.0f);
      continue;
    }
    dir.singular_value = std::sqrt(s2[sz(at)]);
    const double* uk = kkt.data() + at * ra;  // [ra]
    std::vector<double> wk(sz(rb), 0.0);      // Kᵀ uk / s
    for (int64_t i = 0; i < ra; ++i) {
      for (int64_t j = 0; j < rb; ++j) wk[sz(j)] += k[sz(i * rb + j)] * uk[i] / dir.singular_value;
    }
    std::vector<double> left = combine_rows(a, hd, d, coefficients(a_basis, hd, uk));
    std::vector<double> right = combine_rows(b, hd, d, coefficients(b_basis, hd, wk.data()));
    // The sign convention: the left vector's largest-magnitude entry is positive.
    size_t largest = 0;
    for (size_t i = 1; i < left.size(); ++i) {
      if (std::fabs(left[i]) > std::fabs(left[largest])) largest = i;
    }
    if (left[largest] < 0) {
      for (double& x : left) x = -x;
      for (double& x : right) x = -x;
    }
    dir.left = to_float(left);
    dir.right = to_float(right);
  }
}

}  // namespace

std::string_view head_circuit_name(HeadCircuit circuit) { return circuit == HeadCircuit::Ov ? "ov" : "qk"; }

HeadCircuit head_circuit_from_name(std::string_view name) {
  if (name == "ov") return HeadCircuit::Ov;
  if (name == "qk") return HeadCircuit::Qk;
  throw bad_input("unknown head circuit '" + std::string(name) + "' (expected ov or qk)");
}

std::string_view head_side_name(HeadCircuit circuit, int side) {
  if (circuit == HeadCircuit::Ov) return side == 0 ? "out" : "in";
  return side == 0 ? "query" : "key";
}

std::vector<HeadDirection> head_circuit_directions(const Model& model, HeadCircuit circuit, int64_t layer, int rank) {
  const ModelConfig& c = model.config();
  if (layer < 0 || layer >= c.n_layers) {
    throw bad_input("layer " + std::to_string(layer) + " is out of range (the model has layers 0 to " +
                    std::to_string(c.n_layers - 1) + ")");
  }
  const int64_t d = c.d_model, hd = c.head_dim, qw = c.n_heads * hd;
  if (rank < 1 || rank > hd) {
    throw bad_input("head rank " + std::to_string(rank) + " is outside 1 to " + std::to_string(hd) +
                    " (the head dimension)");
  }
  const int64_t group = c.n_heads / c.n_kv_heads;

  // The left side A [hd, d] of every query head, the right side B of every KV head.
  // OV: W_O [d, qw] transposed once, so that head h's columns are rows
  // h·hd .. (h+1)·hd - 1 of [qw, d].
  std::vector<double> w_o_t;
  if (circuit == HeadCircuit::Ov) {
    w_o_t = transposed(weight_rows(model.weight(WeightKind::AttnOutput, layer), 0, d), d, qw);
  }
  // Head h's A: read in place from W_O's transpose, or W_Q's rows into `rows`.
  auto left_of = [&](int64_t h, std::vector<double>& rows) -> const double* {
    if (circuit == HeadCircuit::Ov) return w_o_t.data() + h * hd * d;
    rows = weight_rows(model.weight(WeightKind::AttnQ, layer), h * hd, hd);
    return rows.data();
  };
  const WeightKind right_kind = circuit == HeadCircuit::Ov ? WeightKind::AttnV : WeightKind::AttnK;

  // KV groups in parallel, each head on one thread with one-thread BLAS:
  // the same bits whatever the number of threads.
  std::vector<HeadDirection> out(sz(c.n_heads * rank));
  const cpu::OneThreadBlas blas;
  cpu::FirstException failure;
#pragma omp parallel for schedule(dynamic)
  for (int64_t g = 0; g < c.n_kv_heads; ++g) {
    failure.run([&] {
      const std::vector<double> b = weight_rows(model.weight(right_kind, layer), g * hd, hd);
      const GramBasis b_basis = gram_basis(blas, b.data(), hd, d);
      std::vector<double> q_rows;
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        head_directions(blas, h, left_of(h, q_rows), b.data(), b_basis, hd, d, rank, out.data() + h * rank);
      }
    });
  }
  failure.rethrow();
  return out;
}

}  // namespace neuronlens

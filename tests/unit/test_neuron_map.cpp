// The neuron map end to end, against the float64 NumPy reference written by
// scripts/fixtures/gen_decode_reference.py for the tiny random Llama of
// gen_tiny_llama.py (2 layers, d = 64, F = 96, V = 540; untied and tied LM
// heads; norms final and none; kinds up, gate, down):
//   LmHeadDecode    the fused GEMM + online softmax + top-k decoder (and, on
//                   the default model, its tiling against a brute force);
//   NeuronMapAtlas  run_neuron_map into a SQLite atlas, resume, refusals,
//                   corrupt files;
//   ConceptSearch   expand_concept, exact and atlas-only concept rankings;
//   CompareAtlases  compare_atlases;
//   NeuronMapCli    the map / show / find / compare commands.
#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cfloat>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "backends/cpu/logit_kernels.h"
#include "neuronlens/atlas.h"
#include "neuronlens/compare.h"
#include "neuronlens/concept_search.h"
#include "neuronlens/decode.h"
#include "neuronlens/error.h"
#include "neuronlens/model.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/tensor.h"
#include "scratch_dir.h"
#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

using nlohmann::json;

// ---------------------------------------------------------------------------
// Tolerances.
//
// Top-k logits are re-scored in float64 from the float32 weights, so they
// differ from the reference only through the float32 rounding of the
// normalised vector (|z| * eps_f32 / 2 per element, a few 1e-8 at most here):
// 1e-6, absolute or relative, leaves a wide margin.
constexpr double kLogitTolerance = 1e-6;
// p = exp(z - logsumexp) with p < 0.01 here: its error is p * (dz + dlse),
// far below 1e-6; the same for the top-k mass, a sum of 20 of them.
constexpr double kProbTolerance = 1e-6;
// logsumexp and entropy come from the float32 GEMM's logits. A float32 dot
// product of length d errs by at most d * eps_f32 * sum_j |v_j w_j|, of the
// size of |z| * d * eps_f32: with max |z| = 0.80 (checked below from the
// reference, per model and norm), d = 64 and eps_f32 = 1.19e-7 that is
// 6.1e-6. logsumexp is a smooth maximum (d lse / d z_t = p_t, summing to 1),
// so it moves by at most that much; the entropy's derivative
// -p_t (log p_t + H) has a total weight below 1 for these near-uniform
// distributions. The folding of exponentials (2-ulp exp, float32 partial
// sums) adds a few 1e-7. Hence 1e-5. (Measured: at most 1.5e-7 for both.)
constexpr double kLseTolerance = 1e-5;
// Two consecutive reference logits this close (relative) are a true tie risk:
// either order is accepted, and such cases are counted.
constexpr double kTieRelative = 1e-9;
// Concept scores are sum_t exp(z_t - lse) < 0.01, off by about score * dlse
// (< 1e-8 with dlse < 1e-6): neurons whose reference scores differ by less
// than twice that may trade places in a ranking.
constexpr double kConceptTie = 2e-8;

const VectorKind kKinds[] = {VectorKind::Up, VectorKind::Gate, VectorKind::Down};
const NormMode kNorms[] = {NormMode::Final, NormMode::None};
const char* const kModelNames[] = {"untied", "tied"};

// ---------------------------------------------------------------------------
// Fixtures and helpers.

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path + " (run scripts/fixtures/gen_decode_reference.py)");
  std::ostringstream contents;
  contents << in.rdbuf();
  return json::parse(contents.str());
}

// The reference of one model ("untied", "tied") and norm; parsed once.
const json& reference(const std::string& model, NormMode norm) {
  static std::map<std::string, json> cache;
  const std::string name = model + "_" + std::string(norm_mode_name(norm));
  auto it = cache.find(name);
  if (it == cache.end()) {
    it = cache.emplace(name, read_json(testing::fixture_path("decode_reference/" + name + ".json"))).first;
  }
  return it->second;
}

const json& concept_reference() {
  static const json j = read_json(testing::fixture_path("decode_reference/concept_dog.json"));
  return j;
}

const json& reference_neuron(const std::string& model, NormMode norm, VectorKind kind, int64_t layer, int64_t index) {
  return reference(model, norm)["kinds"][std::string(vector_kind_name(kind))][static_cast<size_t>(layer)]
                               [static_cast<size_t>(index)];
}

Model load_gguf(const std::string& model) {
  return Model::load(testing::fixture_path(reference(model, NormMode::Final)["gguf"].get<std::string>()));
}
Model load_hf(const std::string& model) {
  return Model::load(testing::fixture_path(reference(model, NormMode::Final)["hf"].get<std::string>()));
}

// The decoded distribution, whichever way it was obtained.
struct Decoded {
  double logsumexp = 0, entropy = 0, topk_mass = 0;
  std::vector<int32_t> ids;
  std::vector<double> logits, probs;
};

Decoded decoded_of(const NeuronDecoding& r) {
  Decoded d{r.logsumexp, r.entropy, r.topk_mass, r.top_ids, r.top_logits, {}};
  for (double z : r.top_logits) d.probs.push_back(std::exp(z - r.logsumexp));
  return d;
}

Decoded decoded_of(const AtlasNeuron& n) {
  return {n.logsumexp, n.entropy, n.topk_mass, n.top_ids, n.top_logits, n.top_probs};
}

bool near_tie(double a, double b) { return std::abs(a - b) <= kTieRelative * std::max(std::abs(a), std::abs(b)); }

bool within(double got, double want, double tolerance) {
  return std::abs(got - want) <= tolerance * std::max(1.0, std::abs(want));
}

// Compares one decoding with the reference. Ids must match exactly, except
// within a run of near-tied reference logits (including a tie across the
// top-k boundary, with the (k+1)-th logit), where any order is accepted;
// `tie_cases` counts neurons that have such a run.
::testing::AssertionResult matches_reference(const Decoded& got, const json& ref, int& tie_cases) {
  const auto ids = ref["top_ids"].get<std::vector<int32_t>>();
  const auto logits = ref["top_logits"].get<std::vector<double>>();
  const auto probs = ref["top_probs"].get<std::vector<double>>();
  const size_t k = ids.size();
  if (got.ids.size() != k || got.logits.size() != k || got.probs.size() != k) {
    return ::testing::AssertionFailure() << "top-k has " << got.ids.size() << " entries, expected " << k;
  }
  // group[r]: which run of near-tied logits rank r belongs to.
  std::vector<int> group(k, 0);
  bool any_tie = false;
  for (size_t r = 1; r < k; ++r) {
    const bool tie = near_tie(logits[r - 1], logits[r]);
    any_tie |= tie;
    group[r] = group[r - 1] + (tie ? 0 : 1);
  }
  const bool boundary_tie = near_tie(logits[k - 1], ref["next_logit"].get<double>());
  any_tie |= boundary_tie;
  if (any_tie) ++tie_cases;
  for (size_t r = 0; r < k; ++r) {
    if (got.ids[r] != ids[r]) {
      const auto at = std::find(ids.begin(), ids.end(), got.ids[r]);
      const bool ok = at != ids.end() ? group[static_cast<size_t>(at - ids.begin())] == group[r]
                                      : boundary_tie && group[r] == group[k - 1];
      if (!ok) {
        return ::testing::AssertionFailure() << "rank " << r << ": token " << got.ids[r] << ", expected " << ids[r]
                                             << " (logit " << logits[r] << ")";
      }
    }
    if (!within(got.logits[r], logits[r], kLogitTolerance)) {
      return ::testing::AssertionFailure() << "rank " << r << ": logit " << got.logits[r] << ", expected "
                                           << logits[r];
    }
    if (std::abs(got.probs[r] - probs[r]) > kProbTolerance) {
      return ::testing::AssertionFailure() << "rank " << r << ": prob " << got.probs[r] << ", expected " << probs[r];
    }
  }
  const double lse = ref["logsumexp"].get<double>(), entropy = ref["entropy"].get<double>();
  const double mass = ref["topk_mass"].get<double>();
  if (std::abs(got.logsumexp - lse) > kLseTolerance) {
    return ::testing::AssertionFailure() << "logsumexp " << got.logsumexp << ", expected " << lse;
  }
  if (std::abs(got.entropy - entropy) > kLseTolerance) {
    return ::testing::AssertionFailure() << "entropy " << got.entropy << ", expected " << entropy;
  }
  if (std::abs(got.topk_mass - mass) > kProbTolerance) {
    return ::testing::AssertionFailure() << "top-k mass " << got.topk_mass << ", expected " << mass;
  }
  return ::testing::AssertionSuccess();
}

// For any backend, bf16 included: ids and float64 logits as
// matches_reference checks them (probabilities from the exact logsumexp, so
// that they test the logits), and logsumexp and entropy within the bounds
// the decoding reports.
::testing::AssertionResult matches_reference_within_bounds(const NeuronDecoding& g, const json& ref, int& tie_cases) {
  Decoded exact = decoded_of(g);
  exact.logsumexp = ref["logsumexp"].get<double>();
  exact.entropy = ref["entropy"].get<double>();
  exact.topk_mass = ref["topk_mass"].get<double>();
  exact.probs.clear();
  for (double z : exact.logits) exact.probs.push_back(std::exp(z - exact.logsumexp));
  ::testing::AssertionResult ids = matches_reference(exact, ref, tie_cases);
  if (!ids) return ids;
  if (!(std::abs(g.logsumexp - exact.logsumexp) <= g.logsumexp_error)) {
    return ::testing::AssertionFailure() << "logsumexp " << g.logsumexp << ", expected " << exact.logsumexp
                                         << " within its reported bound " << g.logsumexp_error;
  }
  if (!(std::abs(g.entropy - exact.entropy) <= g.entropy_error)) {
    return ::testing::AssertionFailure() << "entropy " << g.entropy << ", expected " << exact.entropy
                                         << " within its reported bound " << g.entropy_error;
  }
  return ::testing::AssertionSuccess();
}

// Every decode backend this CPU runs; the others are named by
// LmHeadDecode.BackendsThisCpuLacksAreSkipped.
std::vector<DecodeBackendInfo> runnable_backends() {
  std::vector<DecodeBackendInfo> out;
  for (const DecodeBackendInfo& b : decode_backend_names()) {
    if (b.runs_here) out.push_back(b);
  }
  return out;
}

// Decodes every neuron of (kind, layer), as run_neuron_map does.
std::vector<NeuronDecoding> decode_layer(const Model& model, const LmHeadDecoder& decoder, VectorKind kind,
                                         int64_t layer) {
  std::vector<float> vectors;
  load_neuron_vectors(model, kind, layer, vectors);
  decoder.normalize(vectors.data(), model.config().d_ffn);
  return decoder.decode_normalized(vectors.data(), model.config().d_ffn);
}

// Exact precision unless a backend is named: the float64 references'
// tolerances here are the exact path's. The bf16 path is checked against its
// own reported bounds (DefaultModelBf16KeepsEveryExactTopK,
// RecordsThePrecisionAndItsBounds, and every backend by name below), and the
// default (Auto) by DefaultPrecisionIsBf16WhereTheCpuHasBf16Units.
DecodeSettings settings_with(NormMode norm, int top_k = 20, const std::string& backend = "") {
  DecodeSettings s;
  s.norm = norm;
  s.top_k = top_k;
  s.backend = backend;
  if (backend.empty()) s.precision = Precision::Exact;
  return s;
}

MapProgress map_into(const Model& model, const std::string& path, DecodeSettings settings,
                     std::vector<int64_t> layers = {}, std::vector<MapProgress>* reports = nullptr) {
  Atlas atlas = Atlas::create_or_resume(path, atlas_settings_for(model, settings), model.vocab());
  MapOptions options;
  options.settings = settings;
  options.layers = std::move(layers);
  return run_neuron_map(model, options, atlas, [&](const MapProgress& p) {
    if (reports) reports->push_back(p);
  });
}

// Runs `fn`, expecting neuronlens::Error whose message contains `needle`.
template <typename Fn>
::testing::AssertionResult throws_error_containing(Fn&& fn, const std::string& needle) {
  try {
    fn();
  } catch (const Error& e) {
    if (std::string(e.what()).find(needle) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "Error '" << e.what() << "' does not mention '" << needle << "'";
  } catch (const std::exception& e) {
    return ::testing::AssertionFailure() << "threw a non-neuronlens exception: " << e.what();
  }
  return ::testing::AssertionFailure() << "did not throw (expected an Error mentioning '" << needle << "')";
}

// ---------------------------------------------------------------------------
// LmHeadDecode

TEST(LmHeadDecode, ToleranceCoversTheFloat32GemmError) {
  for (const char* model : kModelNames) {
    for (NormMode norm : kNorms) {
      const json& ref = reference(model, norm);
      const double bound = ref["max_abs_logit"].get<double>() * 64 * FLT_EPSILON;
      EXPECT_LT(bound, kLseTolerance) << model << " " << norm_mode_name(norm);
    }
  }
}

TEST(LmHeadDecode, GgufModelsMatchTheFloat64Reference) {
  for (const char* name : kModelNames) {
    const Model model = load_gguf(name);
    ASSERT_EQ(model.config().n_layers, 2);
    ASSERT_EQ(model.config().d_ffn, 96);
    for (NormMode norm : kNorms) {
      for (const DecodeBackendInfo& backend : runnable_backends()) {
        const std::string product = backend.name;
        const LmHeadDecoder decoder(model, settings_with(norm, 20, backend.name));
        int tie_cases = 0;
        for (VectorKind kind : kKinds) {
          for (int64_t layer = 0; layer < model.config().n_layers; ++layer) {
            const std::vector<NeuronDecoding> got = decode_layer(model, decoder, kind, layer);
            ASSERT_EQ(got.size(), 96u);
            for (int64_t i = 0; i < 96; ++i) {
              const NeuronDecoding& g = got[static_cast<size_t>(i)];
              const json& ref = reference_neuron(name, norm, kind, layer, i);
              // float32 bulk logits: within the fixed tolerances too.
              int ignored = 0;
              if (backend.precision == Precision::Exact) {
                EXPECT_TRUE(matches_reference(decoded_of(g), ref, ignored))
                    << name << " norm " << norm_mode_name(norm) << " " << product << " " << layer << ":"
                    << vector_kind_name(kind) << ":" << i;
              }
              EXPECT_TRUE(matches_reference_within_bounds(g, ref, tie_cases))
                  << name << " norm " << norm_mode_name(norm) << " " << product << " " << layer << ":"
                  << vector_kind_name(kind) << ":" << i;
            }
          }
        }
        // Random weights make exact ties rare: a handful at most of 576.
        EXPECT_LE(tie_cases, 5) << name << " norm " << norm_mode_name(norm) << " " << product;
      }
    }
  }
}

TEST(LmHeadDecode, HuggingFaceFolderDecodesLikeGguf) {
  // Only attention q/k rows are permuted between the formats; the FFN
  // weights, the final norm's gamma and the LM head are the same float32
  // numbers. The one difference: GGUF stores the RMS epsilon as a float32
  // (1e-5 becomes 9.99999975e-6), config.json as a double. That moves the
  // final norm's 1/rms by a relative 0.5 * eps / mean(v^2) * 2.5e-8 < 1e-9,
  // and so the logits by less than 1e-9 (float32 rounding of the normalised
  // vector can add an ulp, ~3e-8 at |v_j| ~ 1). Without the norm the
  // decodings are identical.
  for (const char* name : kModelNames) {
    const Model gguf = load_gguf(name);
    const Model hf = load_hf(name);
    ASSERT_EQ(hf.format(), ModelFormat::HuggingFace);
    EXPECT_EQ(gguf.config().rms_norm_eps, static_cast<double>(1e-5f));
    EXPECT_EQ(hf.config().rms_norm_eps, 1e-5);
    for (NormMode norm : kNorms) {
      const double tolerance = norm == NormMode::None ? 0.0 : 1e-7;
      const LmHeadDecoder a(gguf, settings_with(norm)), b(hf, settings_with(norm));
      for (VectorKind kind : kKinds) {
        for (int64_t layer = 0; layer < 2; ++layer) {
          const auto da = decode_layer(gguf, a, kind, layer), db = decode_layer(hf, b, kind, layer);
          ASSERT_EQ(da.size(), db.size());
          for (size_t i = 0; i < da.size(); ++i) {
            SCOPED_TRACE(std::string(name) + " " + std::string(norm_mode_name(norm)) + " " + std::to_string(layer) +
                         ":" + std::string(vector_kind_name(kind)) + ":" + std::to_string(i));
            EXPECT_EQ(da[i].top_ids, db[i].top_ids);
            ASSERT_EQ(da[i].top_logits.size(), db[i].top_logits.size());
            for (size_t r = 0; r < da[i].top_logits.size(); ++r) {
              EXPECT_NEAR(da[i].top_logits[r], db[i].top_logits[r], tolerance);
            }
            EXPECT_NEAR(da[i].logsumexp, db[i].logsumexp, tolerance);
            EXPECT_NEAR(da[i].entropy, db[i].entropy, tolerance);
          }
        }
      }
    }
  }
}

TEST(LmHeadDecode, BackendChoice) {
  const Model model = load_gguf(kModelNames[0]);
  const bool bf16_units = cpu::can_run(cpu::LogitKernelSet::Avx512Bf16);
  const std::string fastest = "cpu-" + std::string(cpu::logit_kernel_set_name(cpu::fastest_f32_kernel_set()));
  // Auto: bf16 where the CPU has bf16 units, else exact on the widest SIMD.
  EXPECT_EQ(DecodeSettings{}.precision, Precision::Auto);
  DecodeSettings auto_settings = settings_with(NormMode::Final);
  auto_settings.precision = Precision::Auto;
  const LmHeadDecoder automatic(model, auto_settings);
  EXPECT_EQ(automatic.backend_name(), bf16_units ? "cpu-avx512bf16-bf16" : fastest + "-fp32");
  EXPECT_EQ(automatic.precision(), bf16_units ? Precision::Bf16 : Precision::Exact);
  DecodeSettings exact = settings_with(NormMode::Final);
  exact.precision = Precision::Exact;
  EXPECT_EQ(choose_decode_backend(exact).name, fastest + "-fp32");
  EXPECT_NE(choose_decode_backend(exact).bound_definition.find("gamma(2d)"), std::string::npos);
  // Every runnable name gives that backend.
  for (const DecodeBackendInfo& b : runnable_backends()) {
    const LmHeadDecoder named(model, settings_with(NormMode::Final, 20, b.name));
    EXPECT_EQ(named.backend_name(), b.name);
    EXPECT_EQ(named.precision(), b.precision);
  }
  for (Precision p : {Precision::Auto, Precision::Exact, Precision::Bf16}) {
    EXPECT_EQ(precision_from_name(precision_name(p)), p);
  }
  EXPECT_TRUE(throws_error_containing([] { precision_from_name("fp16"); }, "expected auto, exact or bf16"));
  EXPECT_TRUE(throws_error_containing([&] { LmHeadDecoder(model, settings_with(NormMode::Final, 20, "cpu-blas")); },
                                      "unknown decode backend 'cpu-blas', expected one of cpu-portable8-fp32"));
  DecodeSettings mismatch = settings_with(NormMode::Final, 20, fastest + "-fp32");
  mismatch.precision = Precision::Bf16;
  EXPECT_TRUE(throws_error_containing([&] { choose_decode_backend(mismatch); }, "computes in exact precision, not bf16"));
  DecodeSettings bf16 = settings_with(NormMode::Final);
  bf16.precision = Precision::Bf16;
  if (bf16_units) {
    EXPECT_EQ(choose_decode_backend(bf16).name, "cpu-avx512bf16-bf16");
  } else {
    EXPECT_TRUE(throws_error_containing([&] { choose_decode_backend(bf16); },
                                        "precision bf16 needs a CPU with bf16 dot-product units"));
  }
}

// A backend this CPU lacks is refused with the feature it needs, and its
// place in the tests above is taken by a skip that names it.
TEST(LmHeadDecode, BackendsThisCpuLacksAreSkipped) {
  std::string missing;
  for (const DecodeBackendInfo& b : decode_backend_names()) {
    if (b.runs_here) continue;
    EXPECT_TRUE(throws_error_containing([&] { choose_decode_backend(settings_with(NormMode::Final, 20, b.name)); },
                                        "needs " + b.needs + ", which this CPU lacks"));
    missing += "\n  " + b.name + " (needs " + b.needs + ")";
  }
  if (!missing.empty()) GTEST_SKIP() << "decode backends this CPU cannot run, so not tested here:" << missing;
}

TEST(LmHeadDecode, ProgressAndSettingsChecks) {
  const Model model = load_gguf("untied");
  EXPECT_THROW(LmHeadDecoder(model, settings_with(NormMode::Final, 0)), Error);
  EXPECT_THROW(LmHeadDecoder(model, settings_with(NormMode::Final, 541)), Error);
  const LmHeadDecoder decoder(model, settings_with(NormMode::Final, 540));  // the whole vocabulary
  std::vector<float> vectors;
  load_neuron_vectors(model, VectorKind::Up, 0, vectors);
  decoder.normalize(vectors.data(), 3);
  std::vector<int64_t> done;
  const auto got = decoder.decode_normalized(vectors.data(), 3, [&](int64_t n) { done.push_back(n); });
  ASSERT_EQ(got.size(), 3u);
  ASSERT_FALSE(done.empty());
  EXPECT_EQ(done.back(), 3);
  // With k = V the top-k mass is the whole distribution (up to the error of
  // logsumexp), and the ranking is a full sort: the reference's top 20 are
  // its first 20.
  int tie_cases = 0;
  for (size_t i = 0; i < 3; ++i) {
    EXPECT_NEAR(got[i].topk_mass, 1.0, kProbTolerance);
    ASSERT_EQ(got[i].top_ids.size(), 540u);
    Decoded d = decoded_of(got[i]);
    d.ids.resize(20);
    d.logits.resize(20);
    d.probs.resize(20);
    const json& ref = reference_neuron("untied", NormMode::Final, VectorKind::Up, 0, static_cast<int64_t>(i));
    d.topk_mass = ref["topk_mass"].get<double>();
    EXPECT_TRUE(matches_reference(d, ref, tie_cases));
    EXPECT_TRUE(std::is_sorted(got[i].top_logits.rbegin(), got[i].top_logits.rend()));
  }
}

// The tiny vocabulary fits one 8192-token tile and one 256-vector block. The
// default model (V = 49152, d = 576) needs six tiles and, for 300 vectors,
// two blocks: the online softmax re-bases across tiles and the top-k merges
// them. Checked against a brute-force float64 decode of the same normalised
// float32 vectors, so only the fused algorithm is measured here.
TEST(LmHeadDecode, DefaultModelTilesAgreeWithABruteForceDecode) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  const Model model = Model::load(path);
  const int64_t d = model.config().d_model, V = model.config().vocab_size;
  ASSERT_GT(V, 2 * 8192);
  const LmHeadDecoder decoder(model, settings_with(NormMode::Final));
  std::vector<float> vectors;
  load_neuron_vectors(model, VectorKind::Down, model.config().n_layers - 1, vectors);
  constexpr int64_t n = 300;
  decoder.normalize(vectors.data(), n);
  std::vector<std::vector<NeuronDecoding>> by_product;
  const std::vector<DecodeBackendInfo> backends = runnable_backends();
  for (const DecodeBackendInfo& backend : backends) {
    const LmHeadDecoder d_product(model, settings_with(NormMode::Final, 20, backend.name));
    by_product.push_back(d_product.decode_normalized(vectors.data(), n));
    ASSERT_EQ(by_product.back().size(), static_cast<size_t>(n));
  }
  // W_U [V, d] from the model's own weight, not the decoder's copy.
  std::vector<float> head_rows(static_cast<size_t>(V * d));
  dequantize_rows(model.lm_head(), 0, V, head_rows.data());
  const float* head = head_rows.data();
  int tie_cases = 0;
  for (int64_t i : {0, 1, 128, 255, 256, 257, 299}) {
    const float* v = vectors.data() + i * d;
    // z_t in float64.
    std::vector<double> z(static_cast<size_t>(V));
    for (int64_t t = 0; t < V; ++t) {
      double dot = 0;
      for (int64_t j = 0; j < d; ++j) dot += static_cast<double>(v[j]) * static_cast<double>(head[t * d + j]);
      z[static_cast<size_t>(t)] = dot;
    }
    const double zmax = *std::max_element(z.begin(), z.end());
    double sum = 0;
    for (double zt : z) sum += std::exp(zt - zmax);
    const double lse = zmax + std::log(sum);
    double entropy = 0;
    for (double zt : z) entropy -= std::exp(zt - lse) * (zt - lse);
    double weight = 0;  // sum_t p_t |log p_t + H|: how far H moves per unit of logit error
    for (double zt : z) weight += std::exp(zt - lse) * std::abs(zt - lse + entropy);
    std::vector<int32_t> order(static_cast<size_t>(V));
    for (int32_t t = 0; t < static_cast<int32_t>(V); ++t) order[static_cast<size_t>(t)] = t;
    std::partial_sort(order.begin(), order.begin() + 21, order.end(), [&](int32_t a, int32_t b) {
      const double za = z[static_cast<size_t>(a)], zb = z[static_cast<size_t>(b)];
      return za > zb || (za == zb && a < b);
    });
    json ref;
    ref["logsumexp"] = lse;
    ref["entropy"] = entropy;
    double mass = 0;
    for (size_t r = 0; r < 20; ++r) {
      const double zt = z[static_cast<size_t>(order[r])];
      ref["top_ids"].push_back(order[r]);
      ref["top_logits"].push_back(zt);
      ref["top_probs"].push_back(std::exp(zt - lse));
      mass += std::exp(zt - lse);
    }
    ref["topk_mass"] = mass;
    ref["next_logit"] = z[static_cast<size_t>(order[20])];
    // logsumexp and entropy come from the float32 GEMM's logits. Here the
    // logits reach |z| ~ 25, and the worst-case bound |z| * d * eps_f32 is
    // 1.7e-3: loose enough to hide a real bug (a tile folded twice or lost).
    // Rounding errors of a length-d dot product with mixed signs grow like
    // sqrt(d), not d; four times that, |z| * sqrt(d) * eps_f32 * 4 (~3e-4),
    // is still far above the errors seen (< 1e-5) and far below what a
    // wrong fold gives. The entropy moves by sum_t p_t |log p_t + H| times
    // the logit error; the exponential folding adds ~1e-7.
    const double tolerance = 4 * std::abs(zmax) * std::sqrt(static_cast<double>(d)) * FLT_EPSILON + 1e-6;
    for (size_t p = 0; p < by_product.size(); ++p) {
      const std::string product = backends[p].name;
      const NeuronDecoding& g = by_product[p][static_cast<size_t>(i)];
      if (backends[p].precision == Precision::Exact) {
        EXPECT_NEAR(g.logsumexp, lse, tolerance) << "vector " << i << " " << product;
        EXPECT_NEAR(g.entropy, entropy, tolerance * std::max(weight, 1.0)) << "vector " << i << " " << product;
        // The top-k mass, sum_r exp(z_r - logsumexp), inherits logsumexp's error.
        EXPECT_NEAR(g.topk_mass, mass, mass * tolerance + kProbTolerance) << "vector " << i << " " << product;
      }
      // Every backend: ids and float64 logits exactly as usual, probabilities
      // from the exact logsumexp (so that they test the logits and not
      // logsumexp again), logsumexp and entropy within their reported bounds.
      EXPECT_TRUE(matches_reference_within_bounds(g, ref, tie_cases)) << "vector " << i << " " << product;
      // The reported bounds are worst cases (Cauchy-Schwarz over d = 576
      // terms), but not vacuous: here under 0.02 nats for float32 products
      // and under 2 for bf16 ones.
      EXPECT_LT(g.logsumexp_error, backends[p].precision == Precision::Exact ? 0.02 : 2.0) << product;
    }
  }
  EXPECT_LE(tie_cases, 4 * static_cast<int>(backends.size()));
}

// Every neuron of the default model (3 kinds x 30 layers x 1536): the bf16
// method gives the same top-k ids and float64 logits as the exact one, and
// its logsumexp and entropy (so every probability's log) differ by no more
// than the two decodings' bounds together. On a CPU without bf16 units the
// bf16 products are emulated (the same sums, logit_kernels.h).
TEST(LmHeadDecode, DefaultModelBf16KeepsEveryExactTopK) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "two whole default-model decodes are too slow under AddressSanitizer; the Release run checks this";
#endif
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  const Model model = Model::load(path);
  const ModelConfig& c = model.config();
  const DecodeSettings exact_settings = settings_with(NormMode::Final);
  const DecodeSettings bf16_settings = settings_with(
      NormMode::Final, 20,
      cpu::can_run(cpu::LogitKernelSet::Avx512Bf16)
          ? "cpu-avx512bf16-bf16"
          : "cpu-" + std::string(cpu::logit_kernel_set_name(cpu::fastest_f32_kernel_set())) + "-bf16emu");
  const LmHeadDecoder exact(model, exact_settings), bf16(model, bf16_settings);
  ASSERT_EQ(bf16.precision(), Precision::Bf16);
  std::vector<float> vectors;
  int64_t neurons = 0, differing_ids = 0;
  double max_lse_gap = 0, max_lse_bound = 0, max_entropy_bound = 0;
  for (VectorKind kind : kKinds) {
    for (int64_t layer = 0; layer < c.n_layers; ++layer) {
      load_neuron_vectors(model, kind, layer, vectors);
      exact.normalize(vectors.data(), c.d_ffn);
      const auto e = exact.decode_normalized(vectors.data(), c.d_ffn);
      const auto b = bf16.decode_normalized(vectors.data(), c.d_ffn);
      for (size_t i = 0; i < e.size(); ++i, ++neurons) {
        if (b[i].top_ids != e[i].top_ids || b[i].top_logits != e[i].top_logits) {
          if (++differing_ids <= 5) {
            ADD_FAILURE() << vector_kind_name(kind) << " layer " << layer << " neuron " << i << ": top-k differs";
          }
        }
        const double lse_gap = std::abs(b[i].logsumexp - e[i].logsumexp);
        EXPECT_LE(lse_gap, b[i].logsumexp_error + e[i].logsumexp_error) << layer << ":" << i;
        EXPECT_LE(std::abs(b[i].entropy - e[i].entropy), b[i].entropy_error + e[i].entropy_error) << layer << ":" << i;
        max_lse_gap = std::max(max_lse_gap, lse_gap);
        max_lse_bound = std::max(max_lse_bound, b[i].logsumexp_error);
        max_entropy_bound = std::max(max_entropy_bound, b[i].entropy_error);
      }
    }
  }
  EXPECT_EQ(neurons, 3 * c.n_layers * c.d_ffn);
  EXPECT_EQ(differing_ids, 0);
  std::printf("[ bf16    ] %s: %lld neurons, same top-k; largest |logsumexp gap| %.3g, largest bf16 bounds: "
              "logsumexp %.3g, entropy %.3g\n",
              bf16.backend_name().data(), static_cast<long long>(neurons), max_lse_gap, max_lse_bound, max_entropy_bound);
}

// ---------------------------------------------------------------------------
// NeuronMapAtlas

TEST(NeuronMapAtlas, MapsEveryKindAndLayerAsTheReference) {
  testing::ScratchDir dir;
  const std::string path = dir.file("untied.db");
  const Model model = load_gguf("untied");
  std::vector<MapProgress> reports;
  const MapProgress done = map_into(model, path, settings_with(NormMode::Final), {}, &reports);
  EXPECT_EQ(done.vectors_total, 3 * 2 * 96);
  EXPECT_EQ(done.vectors_done, done.vectors_total);
  EXPECT_EQ(done.layers_skipped, 0);
  ASSERT_FALSE(reports.empty());
  for (size_t i = 1; i < reports.size(); ++i) EXPECT_GE(reports[i].vectors_done, reports[i - 1].vectors_done);

  const Atlas atlas = Atlas::open(path);
  const AtlasSettings& s = atlas.settings();
  EXPECT_EQ(s.n_layers, 2);
  EXPECT_EQ(s.d_model, 64);
  EXPECT_EQ(s.d_ffn, 96);
  EXPECT_EQ(s.vocab_size, 540);
  EXPECT_EQ(s.top_k, 20);
  EXPECT_EQ(s.norm, NormMode::Final);
  EXPECT_EQ(s.model_sha256, model_sha256(model));
  EXPECT_EQ(atlas.vocab_rows(), 540);
  const auto& dog_ids = concept_reference()["ids"];
  const auto& dog_variants = concept_reference()["variants"];
  for (size_t i = 0; i < dog_ids.size(); ++i) {
    EXPECT_EQ(atlas.token_text(dog_ids[i].get<int32_t>()), dog_variants[i].get<std::string>());
  }
  const auto layers = atlas.layers_done();
  EXPECT_EQ(layers.size(), 6u);
  int tie_cases = 0;
  for (VectorKind kind : kKinds) {
    for (int64_t layer = 0; layer < 2; ++layer) {
      EXPECT_TRUE(atlas.layer_done(kind, layer));
      EXPECT_EQ(atlas.layer_logsumexp(kind, layer).size(), 96u);
      for (int64_t i = 0; i < 96; ++i) {
        const std::optional<AtlasNeuron> n = atlas.neuron(kind, layer, i);
        ASSERT_TRUE(n.has_value()) << layer << ":" << vector_kind_name(kind) << ":" << i;
        EXPECT_TRUE(matches_reference(decoded_of(*n), reference_neuron("untied", NormMode::Final, kind, layer, i),
                                      tie_cases))
            << layer << ":" << vector_kind_name(kind) << ":" << i;
      }
    }
  }
  EXPECT_LE(tie_cases, 5);
  EXPECT_FALSE(atlas.neuron(VectorKind::Up, 0, 96).has_value());
  EXPECT_FALSE(atlas.neuron(VectorKind::Up, 2, 0).has_value());
}

// The atlas records the precision, its bound in words, and the largest
// logsumexp and entropy bounds of the neurons written, for every backend.
TEST(NeuronMapAtlas, RecordsThePrecisionAndItsBounds) {
  const Model model = load_gguf("untied");
  for (const std::string backend : {"cpu-portable8-fp32", "cpu-portable16-bf16emu"}) {
    testing::ScratchDir dir;
    const std::string path = dir.file("precision.db");
    map_into(model, path, settings_with(NormMode::Final, 20, backend), {1});
    const Atlas atlas = Atlas::open(path);
    const AtlasSettings& s = atlas.settings();
    const bool bf16 = backend.ends_with("bf16emu");
    EXPECT_EQ(s.precision, bf16 ? "bf16" : "exact") << backend;
    EXPECT_NE(s.precision_bound.find(bf16 ? "bf16 operands" : "float32 products"), std::string::npos) << backend;
    // The largest bound over the neurons, as decode_layer gives them.
    const LmHeadDecoder decoder(model, settings_with(NormMode::Final, 20, backend));
    double lse = 0, entropy = 0;
    for (VectorKind kind : kKinds) {
      for (const NeuronDecoding& d : decode_layer(model, decoder, kind, 1)) {
        lse = std::max(lse, d.logsumexp_error);
        entropy = std::max(entropy, d.entropy_error);
      }
    }
    EXPECT_GT(lse, 0) << backend;
    EXPECT_DOUBLE_EQ(s.max_logsumexp_error, lse) << backend;
    EXPECT_DOUBLE_EQ(s.max_entropy_error, entropy) << backend;
  }
}

TEST(NeuronMapAtlas, ResumesByKindAndLayer) {
  testing::ScratchDir dir;
  const std::string path = dir.file("resume.db");
  const Model model = load_gguf("untied");
  const DecodeSettings settings = settings_with(NormMode::Final);

  const MapProgress first = map_into(model, path, settings, {0});
  EXPECT_EQ(first.layers_skipped, 0);
  EXPECT_EQ(first.vectors_total, 3 * 96);
  EXPECT_EQ(first.vectors_done, 3 * 96);
  {
    const Atlas atlas = Atlas::open(path);
    EXPECT_EQ(atlas.layers_done().size(), 3u);
    EXPECT_FALSE(atlas.layer_done(VectorKind::Up, 1));
  }

  std::vector<MapProgress> reports;
  const MapProgress second = map_into(model, path, settings, {}, &reports);
  EXPECT_EQ(second.layers_skipped, 3);  // the three kinds of layer 0
  EXPECT_EQ(second.vectors_total, 3 * 96);
  EXPECT_EQ(second.vectors_done, 3 * 96);
  for (const MapProgress& p : reports) {
    EXPECT_EQ(p.layers_skipped, 3);
    EXPECT_EQ(p.vectors_total, 3 * 96);
  }

  const MapProgress third = map_into(model, path, settings);
  EXPECT_EQ(third.vectors_total, 0);
  EXPECT_EQ(third.vectors_done, 0);
  EXPECT_EQ(third.layers_skipped, 6);

  const Atlas atlas = Atlas::open(path);
  EXPECT_EQ(atlas.layers_done().size(), 6u);
  int tie_cases = 0;
  for (VectorKind kind : kKinds) {
    for (int64_t layer = 0; layer < 2; ++layer) {
      for (int64_t i = 0; i < 96; i += 19) {
        EXPECT_TRUE(matches_reference(decoded_of(*atlas.neuron(kind, layer, i)),
                                      reference_neuron("untied", NormMode::Final, kind, layer, i), tie_cases));
      }
    }
  }
}

TEST(NeuronMapAtlas, RefusesOtherSettingsOrModel) {
  testing::ScratchDir dir;
  const std::string path = dir.file("settings.db");
  const Model model = load_gguf("untied");
  map_into(model, path, settings_with(NormMode::Final), {0});
  EXPECT_TRUE(throws_error_containing(
      [&] { Atlas::create_or_resume(path, atlas_settings_for(model, settings_with(NormMode::None)), model.vocab()); },
      "--norm"));
  EXPECT_TRUE(throws_error_containing(
      [&] {
        Atlas::create_or_resume(path, atlas_settings_for(model, settings_with(NormMode::Final, 10)), model.vocab());
      },
      "--top-k"));
  const Model tied = load_gguf("tied");
  EXPECT_TRUE(throws_error_containing(
      [&] { Atlas::create_or_resume(path, atlas_settings_for(tied, settings_with(NormMode::Final)), tied.vocab()); },
      "model"));
  EXPECT_TRUE(throws_error_containing([&] { map_into(tied, path, settings_with(NormMode::Final)); }, "model"));
  // Layers of another precision would mix two bounds in one atlas.
  const std::string other_precision = "cpu-portable8-bf16emu";  // the atlas is exact (settings_with)
  EXPECT_TRUE(throws_error_containing([&] { map_into(model, path, settings_with(NormMode::Final, 20, other_precision)); },
                                      "--precision"));
  // The refusals left the atlas as it was.
  EXPECT_EQ(Atlas::open(path).layers_done().size(), 3u);
}

void write_bytes(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(NeuronMapAtlas, CorruptOrForeignFilesAreRejected) {
  testing::ScratchDir dir;
  EXPECT_TRUE(throws_error_containing([&] { Atlas::open(dir.file("missing.db")); }, "no such atlas"));

  std::mt19937 rng(7);
  std::string noise(16384, '\0');
  for (char& c : noise) c = static_cast<char>(rng() & 0xFF);
  write_bytes(dir.file("noise.db"), noise);
  EXPECT_TRUE(throws_error_containing([&] { Atlas::open(dir.file("noise.db")); }, "not a neuronlens atlas"));
  // Random bytes behind a valid SQLite magic.
  write_bytes(dir.file("magic.db"), std::string("SQLite format 3\0", 16) + noise);
  EXPECT_THROW(Atlas::open(dir.file("magic.db")), Error);

  const Model model = load_gguf("untied");
  const std::string good = dir.file("good.db");
  map_into(model, good, settings_with(NormMode::Final));
  const std::string bytes = read_bytes(good);
  ASSERT_GT(bytes.size(), 8192u);
  for (size_t keep : {bytes.size() / 2, size_t{4096} + 100, size_t{50}}) {
    const std::string cut = dir.file("truncated_" + std::to_string(keep) + ".db");
    write_bytes(cut, bytes.substr(0, keep));
    EXPECT_THROW(Atlas::open(cut), Error) << "truncated to " << keep << " of " << bytes.size() << " bytes";
  }

  // A valid SQLite database that is not an atlas.
  const std::string foreign = dir.file("foreign.db");
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(foreign.c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db, "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);", nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  EXPECT_TRUE(throws_error_containing([&] { Atlas::open(foreign); }, "not a neuronlens atlas"));
  // ... nor is it resumed as one.
  EXPECT_TRUE(throws_error_containing(
      [&] { Atlas::create_or_resume(foreign, atlas_settings_for(model, settings_with(NormMode::Final)), model.vocab()); },
      "not a neuronlens atlas"));
}

// ---------------------------------------------------------------------------
// ConceptSearch

using NeuronKey = std::tuple<std::string, int64_t, int64_t>;  // kind, layer, index

NeuronKey key_of(const ConceptHit& h) { return {std::string(vector_kind_name(h.kind)), h.layer, h.index}; }
NeuronKey key_of(const json& j) {
  return {j["kind"].get<std::string>(), j["layer"].get<int64_t>(), j["index"].get<int64_t>()};
}

// The ranking `got` must list the reference's neurons in its order, except
// that neurons whose reference scores are within kConceptTie may trade
// places; `after` is the score just past the reference list (NaN if none).
void expect_same_ranking(const std::vector<ConceptHit>& got, const json& want, double after, int& swaps) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t r = 0; r < got.size(); ++r) {
    const double want_prob = want[r]["prob"].get<double>();
    EXPECT_NEAR(got[r].prob, want_prob, kProbTolerance) << "rank " << r;
    if (key_of(got[r]) == key_of(want[r])) continue;
    ++swaps;
    bool tied = false;
    for (size_t s = 0; s < want.size(); ++s) {
      if (key_of(want[s]) == key_of(got[r])) tied = std::abs(want[s]["prob"].get<double>() - want_prob) <= kConceptTie;
    }
    if (!tied && r + 1 == got.size() && !std::isnan(after)) tied = std::abs(after - want_prob) <= kConceptTie;
    EXPECT_TRUE(tied) << "rank " << r << ": " << std::get<1>(key_of(got[r])) << ":" << std::get<0>(key_of(got[r]))
                      << ":" << std::get<2>(key_of(got[r])) << ", expected " << want[r].dump();
  }
}

TEST(ConceptSearch, ExpandsAConceptToItsSingleTokenVariants) {
  const Model model = load_gguf("untied");
  const json& ref = concept_reference();
  const ConceptTokens ct = expand_concept(model.vocab(), "dog", false);
  EXPECT_EQ(ct.ids, ref["ids"].get<std::vector<int32_t>>());
  EXPECT_EQ(ct.variants, ref["variants"].get<std::vector<std::string>>());
  EXPECT_EQ(ct.not_single, ref["not_single"].get<std::vector<std::string>>());
  // The atlas's stored vocabulary spells the concept the same way.
  testing::ScratchDir dir;
  map_into(model, dir.file("a.db"), settings_with(NormMode::Final), {0});
  const Vocabulary stored = Atlas::open(dir.file("a.db")).vocabulary();
  EXPECT_EQ(expand_concept(stored, "dog", false).ids, ct.ids);

  EXPECT_TRUE(throws_error_containing([&] { expand_concept(model.vocab(), "zzzzqqq", false); }, "zzzzqqq"));
  EXPECT_THROW(expand_concept(model.vocab(), "", false), Error);
  // --exact: the text as given, only if it is one token.
  if (ref["exact_token"].is_null()) {
    EXPECT_THROW(expand_concept(model.vocab(), "dog", true), Error);
  } else {
    EXPECT_EQ(expand_concept(model.vocab(), "dog", true).ids, std::vector<int32_t>{ref["exact_token"].get<int32_t>()});
  }
  const ConceptTokens space_dog = expand_concept(model.vocab(), " dog", true);
  EXPECT_EQ(space_dog.ids, std::vector<int32_t>{ref["ids"][0].get<int32_t>()});
  EXPECT_EQ(space_dog.variants, std::vector<std::string>{" dog"});
  // Special tokens are not concepts.
  EXPECT_THROW(expand_concept(model.vocab(), "<|im_start|>", true), Error);
}

TEST(ConceptSearch, ExactRankingEqualsBruteForce) {
  const json& ref = concept_reference();
  int swaps = 0;
  for (const char* name : kModelNames) {
    const Model model = load_gguf(name);
    const ConceptTokens ct = expand_concept(model.vocab(), "dog", false);
    for (NormMode norm : kNorms) {
      const std::string config = std::string(name) + "_" + std::string(norm_mode_name(norm));
      SCOPED_TRACE(config);
      const json& want = ref["rankings"][config]["exact"];
      const double after = ref["rankings"][config]["exact_next_prob"].get<double>();
      const LmHeadDecoder decoder(model, settings_with(norm));
      FindOptions options;
      options.limit = 10;
      // Without an atlas: logsumexp from a decode pass.
      const std::vector<ConceptHit> hits = find_concept(model, decoder, nullptr, ct, options);
      expect_same_ranking(hits, want, after, swaps);
      for (const ConceptHit& h : hits) {
        const json& n = reference_neuron(name, norm, h.kind, h.layer, h.index);
        std::vector<int32_t> top = n["top_ids"].get<std::vector<int32_t>>();
        top.resize(static_cast<size_t>(options.show_top));
        EXPECT_EQ(h.top_ids, top);
        EXPECT_GE(h.rank, 1);
      }
      // With an atlas of the same model and norm: its stored logsumexp.
      testing::ScratchDir dir;
      map_into(model, dir.file("a.db"), settings_with(norm));
      const Atlas atlas = Atlas::open(dir.file("a.db"));
      expect_same_ranking(find_concept(model, decoder, &atlas, ct, options), want, after, swaps);
      // An atlas made with the other norm holds the wrong logsumexp values.
      const NormMode other = norm == NormMode::Final ? NormMode::None : NormMode::Final;
      map_into(model, dir.file("other.db"), settings_with(other), {0});
      const Atlas other_atlas = Atlas::open(dir.file("other.db"));
      EXPECT_TRUE(
          throws_error_containing([&] { find_concept(model, decoder, &other_atlas, ct, options); }, "--norm"));
      // Restricting the kinds and layers ranks within them.
      FindOptions only_down = options;
      only_down.kinds = {VectorKind::Down};
      only_down.layers = {1};
      for (const ConceptHit& h : find_concept(model, decoder, &atlas, ct, only_down)) {
        EXPECT_EQ(h.kind, VectorKind::Down);
        EXPECT_EQ(h.layer, 1);
      }
    }
  }
  EXPECT_LE(swaps, 4);
}

TEST(ConceptSearch, AtlasOnlyRankingUsesTheStoredTopK) {
  const json& ref = concept_reference();
  const auto dog = ref["ids"].get<std::vector<int32_t>>();
  int swaps = 0;
  for (const char* name : kModelNames) {
    const Model model = load_gguf(name);
    for (NormMode norm : kNorms) {
      const std::string config = std::string(name) + "_" + std::string(norm_mode_name(norm));
      SCOPED_TRACE(config);
      testing::ScratchDir dir;
      map_into(model, dir.file("a.db"), settings_with(norm));
      const Atlas atlas = Atlas::open(dir.file("a.db"));
      const ConceptTokens ct = expand_concept(atlas.vocabulary(), "dog", false);
      const json& want = ref["rankings"][config]["atlas"];
      ASSERT_GT(want.size(), 10u);
      FindOptions all;
      all.limit = 10000;
      const std::vector<ConceptHit> hits = find_concept_in_atlas(atlas, ct, all);
      expect_same_ranking(hits, want, NAN, swaps);
      for (const ConceptHit& h : hits) {
        const AtlasNeuron n = *atlas.neuron(h.kind, h.layer, h.index);
        double stored = 0;
        for (size_t r = 0; r < n.top_ids.size(); ++r) {
          if (std::find(dog.begin(), dog.end(), n.top_ids[r]) != dog.end()) stored += n.top_probs[r];
        }
        EXPECT_GT(stored, 0) << "a neuron without a dog token in its top-k";
        EXPECT_NEAR(h.prob, stored, 1e-15);
      }
      FindOptions ten;
      ten.limit = 10;
      const std::vector<ConceptHit> top10 = find_concept_in_atlas(atlas, ct, ten);
      ASSERT_EQ(top10.size(), 10u);
      for (size_t r = 0; r < 10; ++r) EXPECT_EQ(key_of(top10[r]), key_of(hits[r]));
    }
  }
  EXPECT_LE(swaps, 8);
}

// ---------------------------------------------------------------------------
// CompareAtlases

TEST(CompareAtlases, AnAtlasAgreesWithItself) {
  testing::ScratchDir dir;
  const Model model = load_gguf("untied");
  map_into(model, dir.file("a.db"), settings_with(NormMode::Final));
  const Atlas a = Atlas::open(dir.file("a.db"));
  const Atlas b = Atlas::open(dir.file("a.db"));
  const Comparison cmp = compare_atlases(a, b, 5);
  ASSERT_EQ(cmp.layers.size(), 6u);
  for (const LayerAgreement& r : cmp.layers) {
    EXPECT_EQ(r.neurons, 96);
    EXPECT_DOUBLE_EQ(r.top1_same, 1.0);
    EXPECT_DOUBLE_EQ(r.mean_overlap, 1.0);
  }
  ASSERT_EQ(cmp.kinds.size(), 3u);
  for (const KindAgreement& k : cmp.kinds) {
    EXPECT_EQ(k.neurons, 192);
    EXPECT_DOUBLE_EQ(k.top1_same, 1.0);
    EXPECT_DOUBLE_EQ(k.mean_overlap, 1.0);
  }
  ASSERT_EQ(cmp.most_changed.size(), 5u);
  for (const ChangedNeuron& c : cmp.most_changed) EXPECT_DOUBLE_EQ(c.overlap, 1.0);
  const std::string svg = agreement_plot_svg(cmp, "a <vs> a");
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("a &lt;vs&gt; a"), std::string::npos);
  EXPECT_NE(svg.find("</svg>"), std::string::npos);
}

TEST(CompareAtlases, TiedAndUntiedHeadsDisagreeAsTheReferenceSays) {
  testing::ScratchDir dir;
  map_into(load_gguf("untied"), dir.file("untied.db"), settings_with(NormMode::Final));
  map_into(load_gguf("tied"), dir.file("tied.db"), settings_with(NormMode::Final));
  const Atlas a = Atlas::open(dir.file("untied.db"));
  const Atlas b = Atlas::open(dir.file("tied.db"));
  constexpr int kChanged = 10;
  const Comparison cmp = compare_atlases(a, b, kChanged);

  // Expected from the reference's top-k lists.
  struct Changed {
    double overlap;
    int64_t layer;
    int kind;
    int64_t index;
    bool operator<(const Changed& o) const {
      return std::tie(overlap, layer, kind, index) < std::tie(o.overlap, o.layer, o.kind, o.index);
    }
  };
  std::vector<Changed> changed;
  ASSERT_EQ(cmp.layers.size(), 6u);
  for (const LayerAgreement& row : cmp.layers) {
    int64_t same = 0;
    double overlap_sum = 0;
    for (int64_t i = 0; i < 96; ++i) {
      const auto ta = reference_neuron("untied", NormMode::Final, row.kind, row.layer, i)["top_ids"]
                          .get<std::vector<int32_t>>();
      const auto tb = reference_neuron("tied", NormMode::Final, row.kind, row.layer, i)["top_ids"]
                          .get<std::vector<int32_t>>();
      same += ta[0] == tb[0];
      const std::set<int32_t> sb(tb.begin(), tb.end());
      int64_t common = 0;
      for (int32_t t : ta) common += static_cast<int64_t>(sb.count(t));
      const double overlap = static_cast<double>(common) / 20.0;
      overlap_sum += overlap;
      changed.push_back({overlap, row.layer, static_cast<int>(row.kind), i});
    }
    EXPECT_EQ(row.neurons, 96);
    EXPECT_DOUBLE_EQ(row.top1_same, static_cast<double>(same) / 96.0) << row.layer << vector_kind_name(row.kind);
    EXPECT_NEAR(row.mean_overlap, overlap_sum / 96.0, 1e-12);
  }
  for (const KindAgreement& k : cmp.kinds) {
    EXPECT_LT(k.top1_same, 1.0) << vector_kind_name(k.kind);
    EXPECT_LT(k.mean_overlap, 1.0) << vector_kind_name(k.kind);
  }
  std::sort(changed.begin(), changed.end());
  ASSERT_EQ(cmp.most_changed.size(), static_cast<size_t>(kChanged));
  for (size_t r = 0; r < cmp.most_changed.size(); ++r) {
    const ChangedNeuron& c = cmp.most_changed[r];
    if (r > 0) {
      EXPECT_GE(c.overlap, cmp.most_changed[r - 1].overlap);
    }
    EXPECT_DOUBLE_EQ(c.overlap, changed[r].overlap);
    EXPECT_EQ(c.layer, changed[r].layer);
    EXPECT_EQ(static_cast<int>(c.kind), changed[r].kind);
    EXPECT_EQ(c.index, changed[r].index);
    EXPECT_EQ(c.top_a, a.neuron(c.kind, c.layer, c.index)->top_ids);
    EXPECT_EQ(c.top_b, b.neuron(c.kind, c.layer, c.index)->top_ids);
  }
}

TEST(CompareAtlases, DifferentShapesAreRefused) {
  testing::ScratchDir dir;
  const Model model = load_gguf("untied");
  map_into(model, dir.file("k20.db"), settings_with(NormMode::Final));
  map_into(model, dir.file("k10.db"), settings_with(NormMode::Final, 10));
  const Atlas k20 = Atlas::open(dir.file("k20.db"));
  EXPECT_TRUE(throws_error_containing([&] { compare_atlases(k20, Atlas::open(dir.file("k10.db")), 10); }, "top-k"));

  // An atlas of a model with a narrower FFN (no layers need be mapped: the
  // shape is checked first).
  AtlasSettings narrow = atlas_settings_for(model, settings_with(NormMode::Final));
  narrow.d_ffn = 48;
  narrow.model_sha256 = "0";
  { Atlas::create_or_resume(dir.file("narrow.db"), narrow, model.vocab()); }
  EXPECT_TRUE(
      throws_error_containing([&] { compare_atlases(k20, Atlas::open(dir.file("narrow.db")), 10); }, "FFN width"));

  // Same shape but no (kind, layer) in common.
  map_into(model, dir.file("layer0.db"), settings_with(NormMode::Final), {0});
  map_into(load_gguf("tied"), dir.file("layer1.db"), settings_with(NormMode::Final), {1});
  EXPECT_TRUE(throws_error_containing(
      [&] { compare_atlases(Atlas::open(dir.file("layer0.db")), Atlas::open(dir.file("layer1.db")), 10); },
      "share no mapped"));
}

// ---------------------------------------------------------------------------
// NeuronMapCli

using testing::run_command;

std::string quoted(const std::string& path) { return "'" + path + "'"; }

TEST(NeuronMapCli, MapShowFindCompare) {
  testing::ScratchDir dir;
  const std::string cli = quoted(testing::cli_path());
  const std::string atlas = dir.file("cli.db");
  const std::string model_path = testing::fixture_path("tiny_llama.gguf");

  std::string out;
  ASSERT_EQ(run_command(cli + " map " + quoted(model_path) + " -o " + quoted(atlas), out), 0) << out;
  EXPECT_NE(out.find("mapped 576 vectors"), std::string::npos) << out;
  EXPECT_NE(out.find("per layer"), std::string::npos) << out;
  EXPECT_NE(out.find("concept 'dog'"), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(run_command(cli + " map " + quoted(model_path) + " -o " + quoted(atlas), out), 0) << out;
  EXPECT_NE(out.find("nothing to do"), std::string::npos) << out;

  // show: the reference's top token of 1:up:5 (the CLI quotes display texts).
  const Model model = load_gguf("untied");
  const json& ref = reference_neuron("untied", NormMode::Final, VectorKind::Up, 1, 5);
  const std::string top = model.vocab().token(ref["top_ids"][0].get<int32_t>()).display;
  out.clear();
  ASSERT_EQ(run_command(cli + " show " + quoted(atlas) + " 1:up:5", out), 0) << out;
  EXPECT_NE(out.find("'" + top + "'"), std::string::npos) << "expected " << top << " in\n" << out;
  out.clear();
  ASSERT_EQ(run_command(cli + " show --json " + quoted(atlas) + " 1:up:5", out, false), 0) << out;
  const json shown = json::parse(out);
  ASSERT_EQ(shown.size(), 1u);
  EXPECT_EQ(shown[0]["top_tokens"][0]["id"].get<int32_t>(), ref["top_ids"][0].get<int32_t>());
  EXPECT_NEAR(shown[0]["entropy"].get<double>(), ref["entropy"].get<double>(), kLseTolerance);
  out.clear();
  EXPECT_EQ(run_command(cli + " show " + quoted(atlas) + " 99:up:5", out), 2) << out;
  EXPECT_NE(out.find("out of range"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run_command(cli + " show " + quoted(atlas) + " 1:sideways:5", out), 2) << out;

  // --precision bf16 without bf16 units, an unknown precision or backend:
  // exit 2 with the option named, nothing written.
  const std::string fresh = dir.file("fresh.db");
  if (!cpu::can_run(cpu::LogitKernelSet::Avx512Bf16)) {
    out.clear();
    EXPECT_EQ(run_command(cli + " map " + quoted(model_path) + " -o " + quoted(fresh) + " --precision bf16", out), 2)
        << out;
    EXPECT_NE(out.find("--precision: precision bf16 needs a CPU with bf16 dot-product units"), std::string::npos)
        << out;
  }
  out.clear();
  EXPECT_EQ(run_command(cli + " map " + quoted(model_path) + " -o " + quoted(fresh) + " --precision fp8", out), 2) << out;
  EXPECT_NE(out.find("--precision: unknown precision 'fp8'"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run_command(cli + " map " + quoted(model_path) + " -o " + quoted(fresh) + " --backend cpu-blas", out), 2)
      << out;
  EXPECT_NE(out.find("--backend: unknown decode backend 'cpu-blas'"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(fresh));

  // The core's list parsers name no option; the CLI puts its own in front.
  out.clear();
  EXPECT_EQ(run_command(cli + " map " + quoted(model_path) + " -o " + quoted(dir.file("bad.db")) + " --layers x", out),
            2)
      << out;
  EXPECT_NE(out.find("--layers: layer 'x' is not a number"), std::string::npos) << out;
  out.clear();
  EXPECT_EQ(run_command(cli + " find " + quoted(atlas) + " dog --kinds sideways", out), 2) << out;
  EXPECT_NE(out.find("--kinds: unknown neuron kind 'sideways'"), std::string::npos) << out;

  // find: the exact ranking (the atlas records the model's path).
  out.clear();
  ASSERT_EQ(run_command(cli + " find " + quoted(atlas) + " dog --json", out, false), 0) << out;
  const json found = json::parse(out);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_TRUE(found[0]["exact"].get<bool>());
  const json& want = concept_reference()["rankings"]["untied_final"]["exact"];
  const json& neurons = found[0]["neurons"];
  ASSERT_EQ(neurons.size(), want.size());
  for (size_t r = 0; r < neurons.size(); ++r) {
    EXPECT_EQ(neurons[r]["kind"].get<std::string>(), want[r]["kind"].get<std::string>()) << r;
    EXPECT_EQ(neurons[r]["layer"].get<int64_t>(), want[r]["layer"].get<int64_t>()) << r;
    EXPECT_EQ(neurons[r]["neuron"].get<int64_t>(), want[r]["index"].get<int64_t>()) << r;
    EXPECT_NEAR(neurons[r]["prob"].get<double>(), want[r]["prob"].get<double>(), kProbTolerance) << r;
  }
  out.clear();
  EXPECT_EQ(run_command(cli + " find " + quoted(atlas) + " zzzzqqq", out), 2) << out;
  EXPECT_NE(out.find("zzzzqqq"), std::string::npos) << out;

  // compare: an atlas with itself, with a plot.
  const std::string svg = dir.file("x.svg");
  out.clear();
  ASSERT_EQ(run_command(cli + " compare " + quoted(atlas) + " " + quoted(atlas) + " --plot " + quoted(svg), out), 0)
      << out;
  EXPECT_NE(out.find("100.0%"), std::string::npos) << out;
  const std::string plot = read_bytes(svg);
  EXPECT_EQ(plot.rfind("<svg", 0), 0u) << plot.substr(0, 200);
  EXPECT_NE(plot.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace neuronlens

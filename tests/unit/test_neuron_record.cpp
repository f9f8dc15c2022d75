// `record` (neuronlens/neuron_record.h) against a brute-force float64 NumPy
// pass over the same chunks (scripts/fixtures/gen_record_reference.py: every
// activation kept, then sorted): each neuron's top contexts of both signs,
// ties broken by position, their display windows, and its statistics. Then
// an interrupted record resumes to the same atlas rows as an uninterrupted
// one, and a record of another corpus or model is refused.
#include <gtest/gtest.h>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "neuronlens/activation_search.h"
#include "neuronlens/atlas.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/neuron_record.h"
#include "scratch_dir.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

using nlohmann::json;

json load_reference() {
  std::ifstream in(testing::fixture_path("record_reference/tiny_llama.json"));
  EXPECT_TRUE(in) << "run scripts/fixtures/gen_record_reference.py";
  return json::parse(in);
}

TokenCorpus reference_corpus(const json& ref) {
  TokenCorpus corpus;
  corpus.files.push_back({"reference-chunks", std::string(64, '0'), 0, 1});
  for (const auto& c : ref.at("chunks")) {
    corpus.chunks.push_back(c.get<std::vector<int32_t>>());
    corpus.chunk_file.push_back(0);
  }
  corpus.seq_len = static_cast<int64_t>(corpus.chunks[0].size());
  return corpus;
}

RecordOptions reference_options(const json& ref) {
  RecordOptions options;
  options.contexts = ref.at("contexts").get<int64_t>();
  options.window = ref.at("window").get<int64_t>();
  options.density_threshold = ref.at("density_threshold").get<double>();
  options.checkpoint_seconds = 0;
  return options;
}

Atlas new_atlas(const Model& model, const std::string& path) {
  return Atlas::create_or_resume(path, atlas_settings_for(model, DecodeSettings{}), model.vocab());
}

// The float32 runtime against float64: activations agree to ~1e-6 here.
constexpr double kTolerance = 2e-5;

void expect_contexts_match(const std::vector<NeuronContext>& got, const json& want, const json& windows,
                           const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t r = 0; r < got.size(); ++r) {
    const double value = want[r][0].get<double>();
    const int64_t chunk = want[r][1].get<int64_t>();
    const int32_t offset = want[r][2].get<int32_t>();
    EXPECT_NEAR(got[r].activation, value, kTolerance * (1 + std::fabs(value))) << what << " rank " << r;
    // A different position is right only where the reference's values are
    // nearer than the runtime's rounding (a near-tie, not an exact one).
    if (got[r].chunk != chunk || got[r].offset != offset) {
      bool near_tie = false;
      for (size_t o = 0; o < want.size(); ++o) {
        if (want[o][1] == got[r].chunk && want[o][2] == got[r].offset &&
            std::fabs(want[o][0].get<double>() - value) < kTolerance) {
          near_tie = true;
        }
      }
      EXPECT_TRUE(near_tie) << what << " rank " << r << ": chunk " << got[r].chunk << " offset " << got[r].offset
                            << ", reference chunk " << chunk << " offset " << offset;
      continue;
    }
    // The display window: 8-bit, so within half a step of the reference.
    const json& w = windows[r];
    ASSERT_EQ(got[r].window.size(), w.size()) << what << " rank " << r;
    EXPECT_EQ(got[r].window_start, std::max<int32_t>(1, offset - 3)) << what;
    for (size_t i = 0; i < w.size(); ++i) {
      EXPECT_NEAR(got[r].window[i] * got[r].window_scale, w[i].get<double>(),
                  got[r].window_scale * 0.5 + kTolerance * (1 + std::fabs(w[i].get<double>())))
          << what << " rank " << r << " window token " << i;
    }
  }
}

TEST(NeuronRecord, TopContextsAndStatisticsEqualABruteForceNumpyPass) {
  const json ref = load_reference();
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  testing::ScratchDir dir;
  Atlas atlas = new_atlas(model, dir.file("record.db"));
  const TokenCorpus corpus = reference_corpus(ref);
  const RecordProgress done = run_neuron_record(model, corpus, reference_options(ref), atlas);
  EXPECT_EQ(done.chunks_done, static_cast<int64_t>(corpus.chunks.size()));
  EXPECT_EQ(done.tokens_done, corpus.tokens());
  const std::optional<RecordInfo> info = atlas.record_info();
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->complete());
  EXPECT_EQ(info->tokens_recorded, corpus.recorded_tokens());
  EXPECT_EQ(info->tokens_recorded, 8 * 23);

  const auto& layers = ref.at("layers");
  int exact_ties_checked = 0;
  for (size_t layer = 0; layer < layers.size(); ++layer) {
    for (size_t j = 0; j < layers[layer].size(); ++j) {
      const json& want = layers[layer][j];
      const std::string what = std::to_string(layer) + ":" + std::to_string(j);
      const std::optional<NeuronEvidence> e = atlas.neuron_evidence(static_cast<int64_t>(layer), static_cast<int64_t>(j));
      ASSERT_TRUE(e) << what;
      expect_contexts_match(e->positive, want.at("positive"), want.at("windows_positive"), what + " positive");
      expect_contexts_match(e->negative, want.at("negative"), want.at("windows_negative"), what + " negative");
      EXPECT_NEAR(e->stats.mean, want.at("mean").get<double>(), kTolerance) << what;
      EXPECT_NEAR(e->stats.std, want.at("std").get<double>(), kTolerance) << what;
      EXPECT_NEAR(e->stats.max_abs, want.at("max_abs").get<double>(), kTolerance) << what;
      EXPECT_LE(std::fabs(e->stats.density - want.at("density").get<double>()),
                (want.at("density_margin").get<double>() + 0.5) / static_cast<double>(info->tokens_recorded))
          << what;
      // Exact ties (chunk 5 repeats chunk 1's first half): chunk 1 first.
      for (const auto* side : {&e->positive, &e->negative}) {
        for (size_t r = 1; r < side->size(); ++r) {
          if ((*side)[r].activation == (*side)[r - 1].activation) {
            EXPECT_LT((*side)[r - 1].chunk, (*side)[r].chunk) << what;
            ++exact_ties_checked;
          }
        }
      }
    }
  }
  EXPECT_GT(exact_ties_checked, 0) << "the reference corpus should produce exact ties";
  // The windows name the chunk's tokens.
  const NeuronEvidence e = *atlas.neuron_evidence(0, 0);
  const std::vector<ContextToken> window = context_window(atlas, e.positive.at(0));
  const std::vector<int32_t> chunk = ref.at("chunks").at(e.positive[0].chunk).get<std::vector<int32_t>>();
  ASSERT_FALSE(window.empty());
  int fired = 0;
  for (size_t i = 0; i < window.size(); ++i) {
    EXPECT_EQ(window[i].id, chunk.at(static_cast<size_t>(e.positive[0].window_start) + i));
    EXPECT_EQ(window[i].text, atlas.token_text(window[i].id));
    fired += window[i].fired ? 1 : 0;
    if (window[i].fired) {
      EXPECT_EQ(window[i].activation, e.positive[0].activation);
    }
  }
  EXPECT_EQ(fired, 1);
}

TEST(NeuronRecord, FindByActivationAveragesTheConceptsPositionsAsNumpyDoes) {
  const json ref = load_reference();
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  testing::ScratchDir dir;
  Atlas atlas = new_atlas(model, dir.file("record.db"));
  run_neuron_record(model, reference_corpus(ref), reference_options(ref), atlas);
  ConceptTokens concept_tokens;
  concept_tokens.concept_text = "the reference's most frequent token";
  concept_tokens.ids = {ref.at("concept_token").get<int32_t>()};
  const int limit = 2 * 96;
  const ActivationSearch found = find_by_activation(model, atlas, concept_tokens, {}, limit);
  EXPECT_EQ(found.positions, ref.at("concept_positions").get<int64_t>());
  ASSERT_EQ(found.hits.size(), static_cast<size_t>(limit));
  for (size_t i = 0; i < found.hits.size(); ++i) {
    const ActivationHit& h = found.hits[i];
    const double want = ref.at("concept_means").at(h.layer).at(h.index).get<double>();
    EXPECT_NEAR(h.mean, want, kTolerance * (1 + std::fabs(want))) << h.layer << ":" << h.index;
    const NeuronStats stats = atlas.neuron_evidence(h.layer, h.index)->stats;
    EXPECT_NEAR(h.z, (h.mean - stats.mean) / stats.std, 1e-9);
    if (i > 0) {
      EXPECT_GE(found.hits[i - 1].z, h.z);
    }
  }
  // Layers chosen, and a concept the corpus lacks.
  EXPECT_EQ(find_by_activation(model, atlas, concept_tokens, {1}, 5).hits.at(0).layer, 1);
  concept_tokens.ids = {0};  // never in the reference chunks
  EXPECT_THROW(find_by_activation(model, atlas, concept_tokens, {}, 5), Error);
}

struct Interrupted {};

TEST(NeuronRecord, AnInterruptedRecordResumesToTheSameRows) {
  const json ref = load_reference();
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const TokenCorpus corpus = reference_corpus(ref);
  const RecordOptions options = reference_options(ref);
  testing::ScratchDir dir;
  Atlas whole = new_atlas(model, dir.file("whole.db"));
  run_neuron_record(model, corpus, options, whole);

  {
    Atlas first = new_atlas(model, dir.file("resumed.db"));
    EXPECT_THROW(run_neuron_record(model, corpus, options, first,
                                   [](const RecordProgress& p) {
                                     if (p.chunks_done == 3) throw Interrupted{};
                                   }),
                 Interrupted);
    const std::optional<RecordInfo> info = first.record_info();
    ASSERT_TRUE(info);
    EXPECT_EQ(info->chunks_done, 3);
    EXPECT_FALSE(info->complete());
  }
  Atlas resumed = new_atlas(model, dir.file("resumed.db"));
  const RecordProgress done = run_neuron_record(model, corpus, options, resumed);
  EXPECT_EQ(done.chunks_skipped, 3);
  EXPECT_EQ(done.chunks_done, 8);
  EXPECT_EQ(resumed.record_info()->tokens_recorded, whole.record_info()->tokens_recorded);

  const auto a = whole.record_states(), b = resumed.record_states();
  ASSERT_EQ(a.size(), b.size());
  for (size_t layer = 0; layer < a.size(); ++layer) {
    ASSERT_EQ(a[layer].size(), b[layer].size());
    for (size_t j = 0; j < a[layer].size(); ++j) {
      const NeuronRecordState &x = a[layer][j], &y = b[layer][j];
      const std::string what = std::to_string(layer) + ":" + std::to_string(j);
      EXPECT_EQ(x.sum, y.sum) << what;
      EXPECT_EQ(x.sum_squares, y.sum_squares) << what;
      EXPECT_EQ(x.max_abs, y.max_abs) << what;
      EXPECT_EQ(x.above_threshold, y.above_threshold) << what;
      for (const auto& [p, q] : {std::pair{&x.positive, &y.positive}, std::pair{&x.negative, &y.negative}}) {
        ASSERT_EQ(p->size(), q->size()) << what;
        for (size_t r = 0; r < p->size(); ++r) {
          EXPECT_EQ((*p)[r].activation, (*q)[r].activation) << what;
          EXPECT_EQ((*p)[r].chunk, (*q)[r].chunk) << what;
          EXPECT_EQ((*p)[r].offset, (*q)[r].offset) << what;
          EXPECT_EQ((*p)[r].window, (*q)[r].window) << what;
        }
      }
    }
  }
  // A finished record run again does nothing.
  const RecordProgress again = run_neuron_record(model, corpus, options, resumed);
  EXPECT_EQ(again.tokens_done, 0);
  EXPECT_EQ(again.chunks_skipped, 8);
}

TEST(NeuronRecord, ARecordOfAnotherCorpusOrOtherOptionsIsRefused) {
  const json ref = load_reference();
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  TokenCorpus corpus = reference_corpus(ref);
  RecordOptions options = reference_options(ref);
  testing::ScratchDir dir;
  Atlas atlas = new_atlas(model, dir.file("record.db"));
  run_neuron_record(model, corpus, options, atlas);
  RecordOptions more = options;
  more.contexts = 5;
  try {
    run_neuron_record(model, corpus, more, atlas);
    ADD_FAILURE() << "a record with other options was accepted";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadInput);
    EXPECT_NE(std::string(e.what()).find("another corpus or other options"), std::string::npos) << e.what();
  }
  TokenCorpus other = corpus;
  other.chunks.pop_back();
  other.chunk_file.pop_back();
  EXPECT_THROW(run_neuron_record(model, other, options, atlas), Error);
  // Options out of range.
  for (auto change : {+[](RecordOptions& o) { o.contexts = 0; }, +[](RecordOptions& o) { o.window = -1; },
                      +[](RecordOptions& o) { o.density_threshold = -1; }}) {
    RecordOptions bad = options;
    change(bad);
    testing::ScratchDir fresh;
    Atlas a = new_atlas(model, fresh.file("bad.db"));
    EXPECT_THROW(run_neuron_record(model, corpus, bad, a), Error);
  }
  // Token ids outside the vocabulary.
  TokenCorpus outside = corpus;
  outside.chunks[0][3] = 100000;
  testing::ScratchDir fresh;
  Atlas a = new_atlas(model, fresh.file("outside.db"));
  EXPECT_THROW(run_neuron_record(model, outside, options, a), Error);
}

}  // namespace
}  // namespace neuronlens

// The server on an atlas with an activation record: /api/info describes the
// record, /api/neurons/... carries the neuron's evidence (the library's
// contexts, each token with its activation), its `contexts` parameter is
// bounded, /api/agreement is the library's per-layer report, and an atlas
// without a record answers null (and "not available").
#include <gtest/gtest.h>

#include <fstream>

#include "neuronlens/neuron_map.h"
#include "neuronlens/neuron_record.h"
#include "neuronlens/record_agreement.h"
#include "neuronlens/text_model.h"
#include "serve_test_support.h"

namespace neuronlens {
namespace {

using nlohmann::json;

TEST(ServeRecord, NeuronPagesCarryTheRecordedContexts) {
  testing::ScratchDir dir;
  const std::string atlas_path = testing::map_fixture_atlas(dir, "tiny_llama.gguf", "a.db");
  const std::string bare_path = testing::map_fixture_atlas(dir, "tiny_llama.gguf", "bare.db");
  {
    const TextModel tm = TextModel::load(testing::fixture_path("tiny_llama.gguf"));
    const std::string corpus = dir.file("c.txt");
    std::ofstream(corpus) << "The dog barked at the cat, and the cat ran up the tree. The dog sat down.\n";
    CorpusOptions corpus_options;
    corpus_options.seq_len = 12;
    Atlas atlas = open_atlas_for_record(tm.model, atlas_path);
    RecordOptions options;
    options.contexts = 3;
    options.window = 2;
    run_neuron_record(tm.model, tokenize_corpus({corpus}, tm.tokenizer, corpus_options), options, atlas);
  }
  server::ServeOptions options;
  options.atlas_path = atlas_path;
  options.no_model = true;
  testing::TestServer server(options);
  const auto info = server.get("/api/info");
  ASSERT_EQ(info.status, 200) << info.text;
  EXPECT_EQ(info.body.at("record").at("files").at(0).at("name"), "c.txt");
  EXPECT_EQ(info.body.at("record").at("contexts"), 3);
  EXPECT_EQ(info.body.at("record").at("complete"), true);

  const Atlas atlas = Atlas::open(atlas_path);
  const NeuronEvidence e = *atlas.neuron_evidence(1, 7);
  const auto r = server.get("/api/neurons/1/down/7?contexts=2");
  ASSERT_EQ(r.status, 200) << r.text;
  const json& evidence = r.body.at("evidence");
  EXPECT_DOUBLE_EQ(evidence.at("stats").at("max_abs").get<double>(), e.stats.max_abs);
  ASSERT_EQ(evidence.at("positive").size(), std::min<size_t>(2, e.positive.size()));
  ASSERT_FALSE(e.positive.empty());
  const json& first = evidence.at("positive").at(0);
  EXPECT_EQ(first.at("chunk"), e.positive[0].chunk);
  EXPECT_EQ(first.at("offset"), e.positive[0].offset);
  const std::vector<ContextToken> window = context_window(atlas, e.positive[0]);
  ASSERT_EQ(first.at("tokens").size(), window.size());
  for (size_t i = 0; i < window.size(); ++i) {
    EXPECT_EQ(first.at("tokens")[i].at("id"), window[i].id);
    EXPECT_EQ(first.at("tokens")[i].at("fired"), window[i].fired);
    EXPECT_FLOAT_EQ(first.at("tokens")[i].at("activation").get<float>(), window[i].activation);
  }
  EXPECT_EQ(server.get("/api/neurons/1/down/7?contexts=101").status, 400);
  EXPECT_EQ(server.get("/api/neurons/1/down/7?contexts=0").body.at("evidence").at("positive").size(), 0u);

  // The record alone, for the playground's "recorded max" (no map needed).
  const auto alone = server.get("/api/record/1/7?contexts=0");
  ASSERT_EQ(alone.status, 200) << alone.text;
  EXPECT_DOUBLE_EQ(alone.body.at("stats").at("max_abs").get<double>(), e.stats.max_abs);
  EXPECT_EQ(alone.body.at("layer"), 1);
  EXPECT_EQ(alone.body.at("index"), 7);
  EXPECT_TRUE(alone.body.at("positive").empty());
  EXPECT_EQ(server.get("/api/record/1/96").status, 400);
  EXPECT_EQ(server.get("/api/record/2/0").status, 400);

  // The overview's agreement: the library's report, per layer.
  const auto agreement = server.get("/api/agreement");
  ASSERT_EQ(agreement.status, 200) << agreement.text;
  ASSERT_EQ(agreement.body.at("available"), true) << agreement.text;
  const ContextAgreementReport report = record_agreement(atlas);
  ASSERT_EQ(agreement.body.at("layers").size(), report.layers.size());
  for (size_t i = 0; i < report.layers.size(); ++i) {
    const json& row = agreement.body.at("layers")[i];
    EXPECT_EQ(row.at("layer"), report.layers[i].layer);
    EXPECT_EQ(row.at("neurons"), report.layers[i].neurons);
    EXPECT_DOUBLE_EQ(row.at("mean_rate").get<double>(), report.layers[i].mean_rate);
    EXPECT_DOUBLE_EQ(row.at("mean_chance").get<double>(), report.layers[i].mean_chance);
  }

  options.atlas_path = bare_path;
  testing::TestServer bare(options);
  EXPECT_TRUE(bare.get("/api/info").body.at("record").is_null());
  EXPECT_EQ(bare.get("/api/agreement").body.at("available"), false);
  EXPECT_EQ(bare.get("/api/record/1/7").status, 404);
  EXPECT_TRUE(bare.get("/api/neurons/1/down/7").body.at("evidence").is_null());
}

}  // namespace
}  // namespace neuronlens

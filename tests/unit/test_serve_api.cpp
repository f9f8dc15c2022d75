// The `serve` JSON API (tools/server/, docs/api.md) against independent
// computations through the library: every endpoint's answer is compared with
// what Atlas, find_concept, compare_atlases and a Session give directly.
// The server runs in-process on a free loopback port, serving atlases mapped
// from the tiny fixture models. Bad input: test_serve_bad_input.cpp.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <vector>

#include "neuronlens/attribution.h"
#include "neuronlens/compare.h"
#include "neuronlens/concept_search.h"
#include "neuronlens/patching.h"
#include "neuronlens/text_model.h"
#include "serve_test_support.h"

namespace neuronlens {
namespace {

using nlohmann::json;
using testing::TestServer;

constexpr VectorKind kKinds[] = {VectorKind::Up, VectorKind::Gate, VectorKind::Down};

// One server with the weights and a compare atlas, one without either; both
// serve the full map of tiny_llama (2 layers x 96 neurons x 3 kinds).
class ServeApi : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new testing::ScratchDir();
    atlas_path_ = new std::string(testing::map_fixture_atlas(*dir_, "tiny_llama.gguf", "untied.db"));
    other_path_ = new std::string(testing::map_fixture_atlas(*dir_, "tiny_llama_tied.gguf", "tied.db"));
    server::ServeOptions with_model;
    with_model.atlas_path = *atlas_path_;
    with_model.compare_path = *other_path_;
    server_ = new TestServer(with_model);
    server::ServeOptions atlas_only;
    atlas_only.atlas_path = *atlas_path_;
    atlas_only.no_model = true;
    atlas_only_ = new TestServer(atlas_only);
  }
  static void TearDownTestSuite() {
    delete atlas_only_;
    delete server_;
    delete other_path_;
    delete atlas_path_;
    delete dir_;
  }
  static testing::ScratchDir* dir_;
  static std::string* atlas_path_;
  static std::string* other_path_;
  static TestServer* server_;
  static TestServer* atlas_only_;
};
testing::ScratchDir* ServeApi::dir_ = nullptr;
std::string* ServeApi::atlas_path_ = nullptr;
std::string* ServeApi::other_path_ = nullptr;
TestServer* ServeApi::server_ = nullptr;
TestServer* ServeApi::atlas_only_ = nullptr;

std::string kind_name(VectorKind kind) { return std::string(vector_kind_name(kind)); }

// The JSON token list's ids.
std::vector<int32_t> ids_of(const json& tokens) {
  std::vector<int32_t> ids;
  for (const json& t : tokens) ids.push_back(t.at("id").get<int32_t>());
  return ids;
}

void expect_summary_is(const json& summary, const AtlasNeuron& n, size_t show_top, const Atlas& atlas) {
  EXPECT_EQ(summary.at("layer"), n.layer);
  EXPECT_EQ(summary.at("kind"), kind_name(n.kind));
  EXPECT_EQ(summary.at("index"), n.index);
  EXPECT_DOUBLE_EQ(summary.at("entropy").get<double>(), n.entropy);
  EXPECT_DOUBLE_EQ(summary.at("logsumexp").get<double>(), n.logsumexp);
  EXPECT_DOUBLE_EQ(summary.at("topk_mass").get<double>(), n.topk_mass);
  const json& top = summary.at("top");
  ASSERT_EQ(top.size(), std::min(show_top, n.top_ids.size()));
  for (size_t i = 0; i < top.size(); ++i) {
    EXPECT_EQ(top[i].at("id"), n.top_ids[i]);
    EXPECT_EQ(top[i].at("text"), atlas.token_text(n.top_ids[i]));
    EXPECT_DOUBLE_EQ(top[i].at("logit").get<double>(), n.top_logits[i]);
    EXPECT_DOUBLE_EQ(top[i].at("prob").get<double>(), n.top_probs[i]);
  }
}

TEST_F(ServeApi, InfoDescribesTheAtlasModelAndCompareAtlas) {
  const auto r = server_->get("/api/info");
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.header("Content-Type"), "application/json");
  const Atlas atlas = Atlas::open(*atlas_path_);
  const AtlasSettings& s = atlas.settings();
  const json& model = r.body.at("model");
  EXPECT_EQ(model.at("name"), s.model_name);
  EXPECT_EQ(model.at("architecture"), s.architecture);
  EXPECT_EQ(model.at("n_layers"), s.n_layers);
  EXPECT_EQ(model.at("d_model"), s.d_model);
  EXPECT_EQ(model.at("d_ffn"), s.d_ffn);
  EXPECT_EQ(model.at("vocab_size"), s.vocab_size);
  EXPECT_EQ(model.at("sha256"), s.model_sha256);
  EXPECT_EQ(model.at("file"), std::filesystem::path(s.model_path).filename().string());
  EXPECT_FALSE(model.contains("path"));
  EXPECT_EQ(r.body.at("settings").at("norm"), "final");
  EXPECT_EQ(r.body.at("settings").at("top_k"), s.top_k);
  for (VectorKind kind : kKinds) EXPECT_EQ(r.body.at("mapped").at(kind_name(kind)), json::array({0, 1}));
  EXPECT_EQ(r.body.at("neurons"), 3 * 2 * 96);
  EXPECT_EQ(r.body.at("model_loaded"), true);
  EXPECT_EQ(r.body.at("exact_search"), true);
  EXPECT_EQ(r.body.at("note"), "");
  const TextModel tm = TextModel::load(s.model_path);
  EXPECT_EQ(r.body.at("chat_template"), tm.chat.has_value());
  EXPECT_EQ(r.body.at("compare").at("model_name"), Atlas::open(*other_path_).settings().model_name);
  EXPECT_EQ(r.body.at("compare").at("file"), "tied.db");
  EXPECT_EQ(r.body.at("limits"), json({{"max_tokens", 256}, {"max_clamps", 16}, {"max_prompt_bytes", 4096}}));

  const auto bare = atlas_only_->get("/api/info");
  ASSERT_EQ(bare.status, 200);
  EXPECT_EQ(bare.body.at("model_loaded"), false);
  EXPECT_EQ(bare.body.at("exact_search"), false);
  EXPECT_NE(bare.body.at("note"), "");
  EXPECT_TRUE(bare.body.at("compare").is_null());
}

TEST_F(ServeApi, OverviewEqualsTheAtlasLayerSummaries) {
  const Atlas atlas = Atlas::open(*atlas_path_);
  for (double threshold : {0.5, 0.0029, 1.0}) {
    std::ostringstream path;
    path << "/api/overview?threshold=" << threshold;
    const auto r = server_->get(path.str());
    ASSERT_EQ(r.status, 200) << r.text;
    EXPECT_DOUBLE_EQ(r.body.at("threshold").get<double>(), threshold);
    EXPECT_EQ(r.body.at("n_layers"), 2);
    EXPECT_EQ(r.body.at("kinds"), json::array({"up", "gate", "down"}));
    std::map<std::pair<std::string, int64_t>, json> cells;
    for (const json& c : r.body.at("cells")) cells[{c.at("kind"), c.at("layer")}] = c;
    EXPECT_EQ(cells.size(), 6u);
    int64_t specialised = 0;
    for (VectorKind kind : kKinds) {
      for (const Atlas::LayerSummary& s : atlas.summarize(kind, threshold)) {
        const json& c = cells.at({kind_name(kind), s.layer});
        EXPECT_EQ(c.at("neurons"), s.neurons);
        EXPECT_DOUBLE_EQ(c.at("mean_entropy").get<double>(), s.mean_entropy);
        EXPECT_EQ(c.at("specialised"), s.specialised);
        EXPECT_DOUBLE_EQ(c.at("specialised_share").get<double>(), double(s.specialised) / double(s.neurons));
        specialised += s.specialised;
      }
    }
    // The thresholds are chosen so the counts are not trivially all zero.
    if (threshold < 0.01) {
      EXPECT_GT(specialised, 0);
    }
  }
}

TEST_F(ServeApi, NeuronEqualsTheAtlasRowWithItsOtherKindsAndNeighbours) {
  const Atlas atlas = Atlas::open(*atlas_path_);
  for (auto [layer, kind, index] : {std::tuple{0, VectorKind::Up, 0}, std::tuple{1, VectorKind::Gate, 42},
                                    std::tuple{1, VectorKind::Down, 95}}) {
    const auto r = server_->get("/api/neurons/" + std::to_string(layer) + "/" + kind_name(kind) + "/" +
                                std::to_string(index) + "?show_top=3");
    ASSERT_EQ(r.status, 200) << r.text;
    const AtlasNeuron n = *atlas.neuron(kind, layer, index);
    expect_summary_is(r.body, n, n.top_ids.size(), atlas);  // all stored top-k
    EXPECT_EQ(r.body.at("top").size(), 20u);
    for (VectorKind other : kKinds) {
      expect_summary_is(r.body.at("other_kinds").at(kind_name(other)), *atlas.neuron(other, layer, index), 3, atlas);
    }
    const json& neighbours = r.body.at("neighbours");
    EXPECT_EQ(neighbours.at("previous"), index == 0 ? json() : json(index - 1));
    EXPECT_EQ(neighbours.at("next"), index == 95 ? json() : json(index + 1));
  }
}

TEST_F(ServeApi, LayerListingIsSortedAndPagedLikeAnIndependentSort) {
  const Atlas atlas = Atlas::open(*atlas_path_);
  std::vector<AtlasNeuron> all;
  for (int64_t i = 0; i < 96; ++i) all.push_back(*atlas.neuron(VectorKind::Gate, 1, i));
  for (const std::string sort : {"index", "entropy", "top1_prob"}) {
    for (const std::string order : {"asc", "desc"}) {
      auto key = [&](const AtlasNeuron& n) {
        return sort == "entropy" ? n.entropy : sort == "top1_prob" ? n.top_probs[0] : double(n.index);
      };
      std::vector<AtlasNeuron> expected = all;
      std::stable_sort(expected.begin(), expected.end(), [&](const AtlasNeuron& a, const AtlasNeuron& b) {
        if (key(a) != key(b)) return order == "asc" ? key(a) < key(b) : key(a) > key(b);
        return a.index < b.index;
      });
      std::vector<json> got;
      for (int offset = 0; offset < 96; offset += 40) {
        const auto r = server_->get("/api/layers/1/gate?sort=" + sort + "&order=" + order +
                                    "&limit=40&show_top=2&offset=" + std::to_string(offset));
        ASSERT_EQ(r.status, 200) << r.text;
        EXPECT_EQ(r.body.at("total"), 96);
        EXPECT_EQ(r.body.at("offset"), offset);
        EXPECT_EQ(r.body.at("limit"), 40);
        for (const json& item : r.body.at("items")) got.push_back(item);
      }
      ASSERT_EQ(got.size(), 96u) << sort << " " << order;
      for (size_t i = 0; i < 96; ++i) {
        expect_summary_is(got[i], expected[i], 2, atlas);
        EXPECT_DOUBLE_EQ(got[i].at("top1_prob").get<double>(), expected[i].top_probs[0]);
      }
    }
  }
  const auto past_the_end = server_->get("/api/layers/0/up?offset=500");
  ASSERT_EQ(past_the_end.status, 200);
  EXPECT_TRUE(past_the_end.body.at("items").empty());
}

void expect_hits_equal(const json& items, const std::vector<ConceptHit>& hits, size_t from) {
  ASSERT_LE(from + items.size(), hits.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const ConceptHit& h = hits[from + i];
    EXPECT_EQ(items[i].at("layer"), h.layer) << "item " << i;
    EXPECT_EQ(items[i].at("kind"), kind_name(h.kind)) << "item " << i;
    EXPECT_EQ(items[i].at("index"), h.index) << "item " << i;
    EXPECT_DOUBLE_EQ(items[i].at("prob").get<double>(), h.prob);
    EXPECT_DOUBLE_EQ(items[i].at("logit").get<double>(), h.logit);
    EXPECT_EQ(items[i].at("rank"), h.rank);
    std::vector<int32_t> top(h.top_ids.begin(), h.top_ids.begin() + std::min<size_t>(3, h.top_ids.size()));
    EXPECT_EQ(ids_of(items[i].at("top")), top);
  }
}

TEST_F(ServeApi, SearchRanksExactlyAsFindConceptDoes) {
  const Atlas atlas = Atlas::open(*atlas_path_);
  const Model model = Model::load(atlas.settings().model_path);
  DecodeSettings settings;
  settings.norm = atlas.settings().norm;
  settings.top_k = atlas.settings().top_k;
  const LmHeadDecoder decoder(model, settings);
  struct Case {
    std::string word;
    bool exact_variants;
    std::string query;  // the rest of the query string
    RankBy by;
    std::vector<VectorKind> kinds;
    std::vector<int64_t> layers;
  };
  for (const Case& c : {Case{"dog", false, "q=dog", RankBy::Probability, {VectorKind::Up, VectorKind::Gate, VectorKind::Down}, {}},
                        Case{"dog", false, "q=dog&by=logit&kinds=up,down&layers=1", RankBy::Logit,
                             {VectorKind::Up, VectorKind::Down}, {1}},
                        Case{" cat", true, "q=%20cat&variants=0&exact=1&layers=0-1", RankBy::Probability,
                             {VectorKind::Up, VectorKind::Gate, VectorKind::Down}, {0, 1}}}) {
    const bool exact_variants = c.exact_variants;
    const std::string& word = c.word;
    const ConceptTokens concept_tokens = expand_concept(model.vocab(), word, exact_variants);
    FindOptions find;
    find.kinds = c.kinds;
    find.layers = c.layers;
    find.rank_by = c.by;
    find.limit = 30;
    find.show_top = 3;
    const std::vector<ConceptHit> hits = find_concept(model, decoder, &atlas, concept_tokens, find);

    const auto first = server_->get("/api/search?" + c.query + "&limit=20&show_top=3");
    ASSERT_EQ(first.status, 200) << first.text;
    EXPECT_EQ(first.body.at("exact"), true);
    EXPECT_EQ(first.body.at("note"), "");
    EXPECT_EQ(first.body.at("total"),
              int64_t(c.kinds.size()) * int64_t(c.layers.empty() ? 2 : c.layers.size()) * 96);
    EXPECT_EQ(first.body.at("concept").at("ids").get<std::vector<int32_t>>(), concept_tokens.ids);
    EXPECT_EQ(first.body.at("concept").at("variants").get<std::vector<std::string>>(), concept_tokens.variants);
    EXPECT_EQ(first.body.at("concept").at("not_single").get<std::vector<std::string>>(), concept_tokens.not_single);
    expect_hits_equal(first.body.at("items"), hits, 0);
    const auto second = server_->get("/api/search?" + c.query + "&limit=10&offset=20&show_top=3");
    ASSERT_EQ(second.status, 200) << second.text;
    EXPECT_EQ(second.body.at("items").size(), 10u);
    expect_hits_equal(second.body.at("items"), hits, 20);
  }
}

TEST_F(ServeApi, SearchWithoutWeightsRanksWithinTheStoredTopK) {
  const Atlas atlas = Atlas::open(*atlas_path_);
  const ConceptTokens concept_tokens = expand_concept(atlas.vocabulary(), "dog", false);
  FindOptions find;
  find.limit = 1000;
  find.show_top = 3;
  int64_t ranked = 0;
  const std::vector<ConceptHit> hits = find_concept_in_atlas(atlas, concept_tokens, find, &ranked);
  ASSERT_GT(hits.size(), 5u);
  // Without weights, and with weights when exact=0 asks for it.
  for (const TestServer* server : {atlas_only_, server_}) {
    const auto r = server->get("/api/search?q=dog&limit=200&show_top=3&exact=0");
    ASSERT_EQ(r.status, 200) << r.text;
    EXPECT_EQ(r.body.at("exact"), false);
    EXPECT_NE(r.body.at("note"), "");
    EXPECT_EQ(r.body.at("total"), ranked);
    EXPECT_EQ(r.body.at("total"), int64_t(hits.size()));
    EXPECT_EQ(r.body.at("items").size(), std::min<size_t>(200, hits.size()));
    expect_hits_equal(r.body.at("items"), hits, 0);
  }
}

TEST_F(ServeApi, TokenSearchAndTheNeuronsHoldingAToken) {
  const Atlas atlas = Atlas::open(*atlas_path_);
  for (const std::string q : {"dog", "do", "d"}) {
    const auto r = server_->get("/api/tokens?q=" + q + "&limit=7");
    ASSERT_EQ(r.status, 200) << r.text;
    const std::vector<int32_t> expected = atlas.search_tokens(q, 7);
    ASSERT_EQ(ids_of(r.body.at("items")), expected);
    for (const json& t : r.body.at("items")) {
      // The trigram index matches regardless of case.
      std::string text = t.at("text");
      for (char& c : text) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      EXPECT_NE(text.find(q), std::string::npos) << text;
      EXPECT_EQ(t.at("text"), atlas.token_text(t.at("id")));
      EXPECT_EQ(t.at("neurons"), int64_t(atlas.neurons_with_token(t.at("id")).size()));
    }
  }

  const int32_t token = *find_token_by_text(atlas.vocabulary(), " dog");
  const std::vector<Atlas::TokenHit> all = atlas.neurons_with_token(token);
  ASSERT_GT(all.size(), 5u);
  std::vector<json> got;
  for (size_t offset = 0; offset < all.size(); offset += 4) {
    const auto r = server_->get("/api/tokens/" + std::to_string(token) + "/neurons?limit=4&show_top=1&offset=" +
                                std::to_string(offset));
    ASSERT_EQ(r.status, 200) << r.text;
    EXPECT_EQ(r.body.at("total"), int64_t(all.size()));
    for (const json& item : r.body.at("items")) got.push_back(item);
  }
  ASSERT_EQ(got.size(), all.size());
  std::set<std::tuple<std::string, int64_t, int64_t>> expected, seen;
  for (const Atlas::TokenHit& h : all) expected.insert({kind_name(h.kind), h.layer, h.index});
  for (size_t i = 0; i < got.size(); ++i) {
    seen.insert({got[i].at("kind").get<std::string>(), got[i].at("layer").get<int64_t>(),
                 got[i].at("index").get<int64_t>()});
    if (i > 0) {
      EXPECT_LE(got[i].at("prob").get<double>(), got[i - 1].at("prob").get<double>());
    }
    const AtlasNeuron n = *atlas.neuron(vector_kind_from_name(got[i].at("kind").get<std::string>()),
                                        got[i].at("layer"), got[i].at("index"));
    const int rank = got[i].at("rank").get<int>();
    ASSERT_GE(rank, 1);
    EXPECT_EQ(n.top_ids[size_t(rank - 1)], token);
    EXPECT_DOUBLE_EQ(got[i].at("prob").get<double>(), n.top_probs[size_t(rank - 1)]);
    expect_summary_is(got[i], n, 1, atlas);
  }
  EXPECT_EQ(seen, expected);
}

// Greedy decoding straight through a Session, with optional clamps: what the
// playground's runs must equal.
std::vector<int32_t> direct_greedy(const TextModel& tm, const std::string& prompt, bool chat, int n,
                                   const std::vector<std::tuple<int64_t, int64_t, float>>& clamps) {
  Session session(tm.model);
  for (const auto& [layer, index, value] : clamps) session.clamp_neurons(layer, {index}, value);
  std::vector<int32_t> ids = tm.prompt_tokens(prompt, chat);
  const std::vector<int32_t> stops = tm.stop_tokens();
  std::vector<float> logits = session.forward(ids, LogitsFor::LastToken);
  std::vector<int32_t> out;
  for (int i = 0; i < n; ++i) {
    const int32_t next = argmax_token(logits);
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) break;
    out.push_back(next);
    logits = session.forward({next}, LogitsFor::LastToken);
  }
  return out;
}

std::vector<json> ndjson_lines(const std::string& text) {
  std::vector<json> lines;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) lines.push_back(json::parse(line));
  }
  return lines;
}

TEST_F(ServeApi, GenerateStreamsABaselineAndAClampedRunEqualToDirectSessions) {
  const TextModel tm = TextModel::load(Atlas::open(*atlas_path_).settings().model_path);
  for (bool chat : {false, true}) {
    const json body = {{"prompt", "the dog"},
                       {"chat", chat},
                       {"max_tokens", 12},
                       {"clamps", {{{"layer", 1}, {"index", 3}, {"value", 50.0}}}},
                       {"ablate", {{{"layer", 0}, {"index", 7}}}}};
    const auto r = server_->post("/api/generate", body);
    ASSERT_EQ(r.status, 200) << r.text;
    EXPECT_EQ(r.header("Content-Type"), "application/x-ndjson");
    const std::vector<json> lines = ndjson_lines(r.text);
    std::map<std::string, std::vector<int32_t>> ids;
    std::map<std::string, std::string> text, done_text;
    std::vector<std::string> events;
    for (const json& line : lines) {
      const std::string event = line.at("event");
      events.push_back(line.value("run", "") + ":" + event);
      if (event == "token") {
        ids[line.at("run")].push_back(line.at("id"));
        text[line.at("run")] += line.at("text").get<std::string>();
      }
      if (event == "done") {
        EXPECT_EQ(line.at("tokens"), int64_t(ids[line.at("run")].size()));
        EXPECT_TRUE(line.at("stop") == "length" || line.at("stop") == "eos");
        EXPECT_GE(line.at("seconds").get<double>(), 0.0);
        done_text[line.at("run")] = line.at("text");
      }
      if (event == "start") {
        EXPECT_EQ(line.at("prompt_tokens"), int64_t(tm.prompt_tokens("the dog", chat).size()));
      }
    }
    ASSERT_GE(events.size(), 5u);
    EXPECT_EQ(events.front(), "baseline:start");
    EXPECT_EQ(events.back(), ":end");
    const std::vector<int32_t> baseline = direct_greedy(tm, "the dog", chat, 12, {});
    const std::vector<int32_t> clamped = direct_greedy(tm, "the dog", chat, 12, {{1, 3, 50.0f}, {0, 7, 0.0f}});
    EXPECT_EQ(ids["baseline"], baseline);
    EXPECT_EQ(ids["clamped"], clamped);
    EXPECT_NE(baseline, clamped);
    EXPECT_EQ(done_text["baseline"], text["baseline"]);
    // The streamed text is the decoded tokens, with bytes that are not UTF-8
    // shown as U+FFFD (JSON holds text only).
    const std::string decoded = json(tm.tokenizer.decode(baseline)).dump(-1, ' ', false, json::error_handler_t::replace);
    EXPECT_EQ(text["baseline"], json::parse(decoded).get<std::string>());
  }

  // Sampled runs use the same seed: with no intervention both runs agree,
  // and they equal a Sampler driven directly.
  const json sampled = {{"prompt", "the dog"}, {"max_tokens", 10}, {"temperature", 1.3}, {"top_k", 40},
                        {"top_p", 0.95}, {"seed", 7}};
  const std::vector<json> lines = ndjson_lines(server_->post("/api/generate", sampled).text);
  std::map<std::string, std::vector<int32_t>> ids;
  for (const json& line : lines) {
    if (line.at("event") == "token") ids[line.at("run")].push_back(line.at("id"));
  }
  SamplingOptions options;
  options.temperature = 1.3;
  options.top_k = 40;
  options.top_p = 0.95;
  options.seed = 7;
  Sampler sampler(options);
  Session session(tm.model);
  std::vector<int32_t> direct;
  generate_text(session, tm, tm.prompt_tokens("the dog", false), 10, sampler, [&](int32_t id, std::string_view) {
    direct.push_back(id);
    return true;
  });
  EXPECT_EQ(ids["baseline"], direct);
  EXPECT_EQ(ids["clamped"], direct);

  // baseline: false runs the clamped run alone.
  const std::vector<json> alone =
      ndjson_lines(server_->post("/api/generate", json{{"prompt", "the dog"}, {"max_tokens", 2}, {"baseline", false}})
                       .text);
  ASSERT_FALSE(alone.empty());
  EXPECT_EQ(alone.front().at("run"), "clamped");
}

// softmax in double, written here rather than taken from the library.
std::vector<double> reference_softmax(const std::vector<float>& logits) {
  double top = -INFINITY;
  for (float z : logits) top = std::max(top, double(z));
  std::vector<double> p;
  double sum = 0;
  for (float z : logits) sum += std::exp(double(z) - top);
  for (float z : logits) p.push_back(std::exp(double(z) - top) / sum);
  return p;
}

TEST_F(ServeApi, ProbeEqualsTheSoftmaxOfDirectForwardPasses) {
  const TextModel tm = TextModel::load(Atlas::open(*atlas_path_).settings().model_path);
  const std::vector<int32_t> prompt = tm.prompt_tokens("the dog", true);
  Session session(tm.model);
  const std::vector<double> before = reference_softmax(session.forward(prompt, LogitsFor::LastToken));
  session.reset();
  session.clamp_neurons(1, {3}, 50.0f);
  const std::vector<double> after = reference_softmax(session.forward(prompt, LogitsFor::LastToken));

  const json body = {{"prompt", "the dog"},
                     {"chat", true},
                     {"tokens", {" dog", " cat"}},
                     {"clamps", {{{"layer", 1}, {"index", 3}, {"value", 50}}}},
                     {"top", 5}};
  const auto r = server_->post("/api/probe", body);
  ASSERT_EQ(r.status, 200) << r.text;
  ASSERT_EQ(r.body.at("tokens").size(), 2u);
  for (const json& t : r.body.at("tokens")) {
    const std::vector<int32_t> ids = tm.tokenizer.encode(t.at("text").get<std::string>(), false);
    ASSERT_EQ(ids.size(), 1u);
    EXPECT_EQ(t.at("id"), ids[0]);
    EXPECT_NEAR(t.at("baseline").get<double>(), before[size_t(ids[0])], 1e-12);
    EXPECT_NEAR(t.at("clamped").get<double>(), after[size_t(ids[0])], 1e-12);
  }
  EXPECT_NE(r.body.at("tokens")[0].at("baseline"), r.body.at("tokens")[0].at("clamped"));
  for (const auto& [name, p] : {std::pair{"baseline_top", &before}, std::pair{"clamped_top", &after}}) {
    const json& top = r.body.at(name);
    ASSERT_EQ(top.size(), 5u);
    for (size_t i = 0; i < top.size(); ++i) {
      const auto id = top[i].at("id").get<size_t>();
      EXPECT_NEAR(top[i].at("prob").get<double>(), (*p)[id], 1e-12);
      // Nothing outside the list is more probable than its last entry.
      if (i + 1 == top.size()) {
        EXPECT_EQ(std::count_if(p->begin(), p->end(), [&](double x) { return x > (*p)[id]; }), 4);
      }
    }
  }
}

TEST_F(ServeApi, ProbeWithHeadInterventionsEqualsADirectSession) {
  const TextModel tm = TextModel::load(Atlas::open(*atlas_path_).settings().model_path);
  const std::vector<int32_t> prompt = tm.prompt_tokens("the dog", false);
  Session session(tm.model);
  session.ablate_heads(1, {2});
  session.scale_heads(0, {0}, 3.0f);
  const std::vector<double> after = reference_softmax(session.forward(prompt, LogitsFor::LastToken));
  const json body = {{"prompt", "the dog"},
                     {"tokens", {" dog"}},
                     {"heads", {{{"layer", 1}, {"head", 2}, {"factor", 0}}, {{"layer", 0}, {"head", 0}, {"factor", 3}}}}};
  const auto r = server_->post("/api/probe", body);
  ASSERT_EQ(r.status, 200) << r.text;
  const json& t = r.body.at("tokens")[0];
  EXPECT_NEAR(t.at("clamped").get<double>(), after[t.at("id").get<size_t>()], 1e-12);
  EXPECT_NE(t.at("baseline"), t.at("clamped"));
  // /api/info tells the playground how many heads a layer has.
  EXPECT_EQ(server_->get("/api/info").body.at("n_heads"), tm.model.config().n_heads);
}

TEST_F(ServeApi, AttributeAndPatchEqualTheLibrary) {
  const TextModel tm = TextModel::load(Atlas::open(*atlas_path_).settings().model_path);
  const std::vector<int32_t> prompt = tm.prompt_tokens("the dog", false);
  const int32_t dog = tm.tokenizer.encode(" dog", false).at(0), cat = tm.tokenizer.encode(" cat", false).at(0);
  const Attribution a = attribute_logit(tm.model, prompt, dog, cat);
  const auto r = server_->post("/api/attribute", json{{"prompt", "the dog"}, {"token", " dog"}, {"vs", " cat"}, {"top", 5}});
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(r.body.at("logit").get<double>(), a.logit);
  EXPECT_EQ(r.body.at("remainder").get<double>(), a.remainder());
  ASSERT_EQ(r.body.at("components").size(), 5u);
  EXPECT_EQ(r.body.at("components")[0].at("contribution").get<double>(), a.top(1)[0].contribution);

  const std::vector<int32_t> corrupt = tm.prompt_tokens("the cat", false);
  const PatchingResult p = patch_activations(tm.model, prompt, corrupt, dog, std::nullopt, {1});
  const auto q = server_->post("/api/patch", json{{"clean", "the dog"}, {"corrupt", "the cat"}, {"token", " dog"},
                                                  {"layers", {1}}});
  ASSERT_EQ(q.status, 200) << q.text;
  EXPECT_EQ(q.body.at("layers"), json({1}));
  ASSERT_EQ(q.body.at("residual").size(), p.residual.size());
  for (size_t i = 0; i < p.residual.size(); ++i) {
    EXPECT_EQ(q.body.at("residual")[i].at("restored").get<double>(), p.residual[i]);
  }
  EXPECT_EQ(q.body.at("residual").back().at("restored").get<double>(), 1.0);
}

TEST_F(ServeApi, ActivationsEqualARecordedForwardPass) {
  const TextModel tm = TextModel::load(Atlas::open(*atlas_path_).settings().model_path);
  const std::vector<int32_t> prompt = tm.prompt_tokens("my dog barks", false);
  Session session(tm.model);
  const auto gate = session.record(HookPoint::MlpGate, 1);
  const auto up = session.record(HookPoint::MlpUp, 1);
  const auto act = session.record(HookPoint::MlpAct, 1);
  session.forward(prompt, LogitsFor::LastToken);

  const auto r = server_->post("/api/activations", json{{"text", "my dog barks"}, {"layer", 1}, {"index", 17}});
  ASSERT_EQ(r.status, 200) << r.text;
  EXPECT_EQ(ids_of(r.body.at("tokens")), prompt);
  const size_t n = prompt.size();
  ASSERT_EQ(r.body.at("act").size(), n);
  double max_abs = 0;
  for (size_t t = 0; t < n; ++t) {
    const float a = act->values[t * size_t(act->width) + 17];
    const float g = gate->values[t * size_t(gate->width) + 17];
    const float u = up->values[t * size_t(up->width) + 17];
    EXPECT_FLOAT_EQ(r.body.at("act")[t].get<float>(), a);
    EXPECT_FLOAT_EQ(r.body.at("gate")[t].get<float>(), g);
    EXPECT_FLOAT_EQ(r.body.at("up")[t].get<float>(), u);
    // The activation a clamp sets is silu(gate) * up.
    EXPECT_NEAR(a, g / (1 + std::exp(-g)) * u, 1e-6);
    max_abs = std::max(max_abs, std::fabs(double(a)));
  }
  EXPECT_DOUBLE_EQ(r.body.at("max_abs").get<double>(), max_abs);
}

TEST_F(ServeApi, CompareEqualsCompareAtlases) {
  const Atlas a = Atlas::open(*atlas_path_);
  const Atlas b = Atlas::open(*other_path_);
  const Comparison expected = compare_atlases(a, b, 3 * 2 * 96);
  const auto summary = server_->get("/api/compare/summary");
  ASSERT_EQ(summary.status, 200) << summary.text;
  EXPECT_EQ(summary.body.at("a").at("file"), "untied.db");
  EXPECT_EQ(summary.body.at("b").at("file"), "tied.db");
  ASSERT_EQ(summary.body.at("layers").size(), expected.layers.size());
  for (size_t i = 0; i < expected.layers.size(); ++i) {
    const json& l = summary.body.at("layers")[i];
    EXPECT_EQ(l.at("kind"), kind_name(expected.layers[i].kind));
    EXPECT_EQ(l.at("layer"), expected.layers[i].layer);
    EXPECT_EQ(l.at("neurons"), expected.layers[i].neurons);
    EXPECT_DOUBLE_EQ(l.at("top1_same").get<double>(), expected.layers[i].top1_same);
    EXPECT_DOUBLE_EQ(l.at("mean_overlap").get<double>(), expected.layers[i].mean_overlap);
  }
  ASSERT_EQ(summary.body.at("kinds").size(), expected.kinds.size());
  for (size_t i = 0; i < expected.kinds.size(); ++i) {
    EXPECT_DOUBLE_EQ(summary.body.at("kinds")[i].at("mean_overlap").get<double>(), expected.kinds[i].mean_overlap);
  }

  for (const std::string filter : {"", "kind=gate&layer=1&"}) {
    std::vector<ChangedNeuron> wanted;
    for (const ChangedNeuron& c : expected.most_changed) {
      if (filter.empty() || (c.kind == VectorKind::Gate && c.layer == 1)) wanted.push_back(c);
    }
    const auto r = server_->get("/api/compare/changed?" + filter + "offset=3&limit=15");
    ASSERT_EQ(r.status, 200) << r.text;
    EXPECT_EQ(r.body.at("total"), int64_t(wanted.size()));
    const json& items = r.body.at("items");
    ASSERT_EQ(items.size(), 15u);
    for (size_t i = 0; i < items.size(); ++i) {
      const ChangedNeuron& c = wanted[3 + i];
      EXPECT_EQ(items[i].at("kind"), kind_name(c.kind));
      EXPECT_EQ(items[i].at("layer"), c.layer);
      EXPECT_EQ(items[i].at("index"), c.index);
      EXPECT_DOUBLE_EQ(items[i].at("overlap").get<double>(), c.overlap);
      EXPECT_EQ(ids_of(items[i].at("top_a")), c.top_a);
      EXPECT_EQ(ids_of(items[i].at("top_b")), c.top_b);
    }
  }
}

TEST_F(ServeApi, OffsetsPastTheEndGiveEmptyPages) {
  const std::string largest = "9223372036854775807";
  for (const std::string path : {"/api/layers/0/up?offset=", "/api/tokens/5/neurons?offset=",
                                 "/api/compare/changed?offset="}) {
    const auto r = server_->get(path + largest);
    ASSERT_EQ(r.status, 200) << path << ": " << r.text;
    EXPECT_TRUE(r.body.at("items").empty()) << path;
    EXPECT_EQ(r.body.at("offset").get<int64_t>(), INT64_MAX) << path;
  }
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// web/ in the source tree, found from this file's path.
std::filesystem::path web_dir() { return std::filesystem::path(__FILE__).parent_path().parent_path().parent_path() / "web"; }

TEST_F(ServeApi, PagesServeTheEmbeddedIndexAndAssets) {
  const std::string index = read_file(web_dir() / "index.html");
  ASSERT_FALSE(index.empty());
  for (const char* page : {"/", "/search", "/layer/1/up", "/neuron/1/gate/5", "/compare", "/playground"}) {
    const auto r = server_->get(page);
    ASSERT_EQ(r.status, 200) << page;
    EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
    EXPECT_EQ(r.text, index) << page;
  }
  const std::map<std::string, std::string> types = {{".js", "text/javascript; charset=utf-8"},
                                                    {".css", "text/css; charset=utf-8"},
                                                    {".svg", "image/svg+xml"}};
  int served = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(web_dir() / "assets")) {
    if (!entry.is_regular_file() || entry.path().filename().string().front() == '.') continue;
    std::string url = "/";  // appended, not "/" + ...: GCC 12 warns falsely on that
    url += std::filesystem::relative(entry.path(), web_dir()).generic_string();
    const auto r = server_->get(url);
    ASSERT_EQ(r.status, 200) << url;
    EXPECT_EQ(r.text, read_file(entry.path())) << url;
    if (types.count(entry.path().extension().string())) {
      EXPECT_EQ(r.header("Content-Type"), types.at(entry.path().extension().string())) << url;
    }
    ++served;
  }
  EXPECT_GT(served, 0);
}

}  // namespace
}  // namespace neuronlens

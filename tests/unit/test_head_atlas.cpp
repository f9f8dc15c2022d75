// The head atlas (issue 15, part 1): every head's OV and QK singular
// directions and their decoded tokens, against a float64 NumPy SVD and decode
// of the same definition (scripts/fixtures/gen_head_reference.py) on the
// tiny family models, through the library and through `map --kinds ov,qk`.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "json_fixture.h"
#include "neuronlens/atlas.h"
#include "neuronlens/error.h"
#include "neuronlens/head_circuits.h"
#include "neuronlens/model.h"
#include "neuronlens/neuron_map.h"
#include "scratch_dir.h"
#include "serve_test_support.h"
#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

constexpr int kRank = 3;

class HeadAtlas : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    reference_ = testing::read_json(testing::fixture_path("head_reference/" + GetParam() + ".json"));
    model_path_ = testing::committed_fixture("families/" + GetParam() + "/model.gguf");
  }
  nlohmann::json reference_;
  std::string model_path_;
};

TEST_P(HeadAtlas, SingularDirectionsEqualNumpysSvd) {
  const Model model = Model::load(model_path_);
  const ModelConfig& c = model.config();
  ASSERT_EQ(reference_.at("head_dim").get<int64_t>(), c.head_dim);
  for (HeadCircuit circuit : {HeadCircuit::Ov, HeadCircuit::Qk}) {
    const std::string name(head_circuit_name(circuit));
    const nlohmann::json& layers = reference_.at("circuits").at(name);
    const nlohmann::json& vectors = reference_.at("vectors").at(name);
    double worst_sigma = 0, worst_vector = 0;
    for (int64_t layer = 0; layer < c.n_layers; ++layer) {
      const std::vector<HeadDirection> dirs = head_circuit_directions(model, circuit, layer, kRank);
      ASSERT_EQ(dirs.size(), static_cast<size_t>(c.n_heads * kRank));
      for (const HeadDirection& d : dirs) {
        const double sigma = layers[size_t(layer)][size_t(d.head)][size_t(d.rank)].at("sigma").get<double>();
        worst_sigma = std::max(worst_sigma, std::fabs(d.singular_value - sigma) / sigma);
        if (layer != vectors.at("layer").get<int64_t>() || d.head != vectors.at("head").get<int64_t>()) continue;
        // The vectors themselves, with the sign convention.
        const auto left = vectors.at("left")[size_t(d.rank)].get<std::vector<double>>();
        const auto right = vectors.at("right")[size_t(d.rank)].get<std::vector<double>>();
        for (size_t e = 0; e < left.size(); ++e) {
          worst_vector = std::max({worst_vector, std::fabs(d.left[e] - left[e]), std::fabs(d.right[e] - right[e])});
        }
      }
    }
    EXPECT_LT(worst_sigma, 1e-9) << GetParam() << " " << name;
    EXPECT_LT(worst_vector, 1e-6) << GetParam() << " " << name;
    std::printf("%s %s: singular values within %.2g relative, vectors within %.2g\n", GetParam().c_str(),
                name.c_str(), worst_sigma, worst_vector);
  }
}

// The atlas's decode of both sides: the same top tokens and logsumexp as
// NumPy's, read back through Atlas::head.
TEST_P(HeadAtlas, MapStoresTheReferenceDecodes) {
  const Model model = Model::load(model_path_);
  const ModelConfig& c = model.config();
  testing::ScratchDir dir;
  const std::string path = dir.file("heads.db");
  MapOptions options;
  options.kinds = {};
  options.circuits = {HeadCircuit::Ov, HeadCircuit::Qk};
  options.head_rank = kRank;
  options.settings.precision = Precision::Exact;
  Atlas atlas = Atlas::create_or_resume(path, atlas_settings_for(model, options.settings), model.vocab());
  const MapProgress progress = run_neuron_map(model, options, atlas);
  EXPECT_EQ(progress.layers_mapped, 2 * c.n_layers);
  EXPECT_EQ(progress.vectors_done, 2 * c.n_layers * c.n_heads * kRank * 2);
  EXPECT_EQ(atlas.head_rank(), kRank);
  int compared = 0;
  double worst_lse = 0, worst_logit = 0;
  for (HeadCircuit circuit : {HeadCircuit::Ov, HeadCircuit::Qk}) {
    const std::string name(head_circuit_name(circuit));
    for (int64_t layer = 0; layer < c.n_layers; ++layer) {
      EXPECT_TRUE(atlas.head_layer_done(circuit, layer));
      for (int64_t h = 0; h < c.n_heads; ++h) {
        const std::vector<AtlasHeadDirection> stored = atlas.head(circuit, layer, h);
        ASSERT_EQ(stored.size(), size_t(kRank));
        for (int r = 0; r < kRank; ++r) {
          const nlohmann::json& ref = reference_.at("circuits").at(name)[size_t(layer)][size_t(h)][size_t(r)];
          EXPECT_NEAR(stored[size_t(r)].singular_value, ref.at("sigma").get<double>(), 1e-9);
          for (int side = 0; side < 2; ++side) {
            const nlohmann::json& want = ref.at("sides")[size_t(side)];
            const AtlasHeadSide& got = stored[size_t(r)].sides[side];
            worst_lse = std::max(worst_lse, std::fabs(got.logsumexp - want.at("logsumexp").get<double>()));
            const auto ids = want.at("top_ids").get<std::vector<int32_t>>();
            const auto logits = want.at("top_logits").get<std::vector<double>>();
            ASSERT_GE(got.top_ids.size(), ids.size());
            for (size_t i = 0; i < ids.size(); ++i) {
              worst_logit = std::max(worst_logit, std::fabs(got.top_logits[i] - logits[i]));
              // The same id wherever the reference's order is not a near-tie.
              const bool tie = (i > 0 && logits[i - 1] - logits[i] < 1e-6) ||
                               (i + 1 < logits.size() && logits[i] - logits[i + 1] < 1e-6);
              if (!tie) {
                EXPECT_EQ(got.top_ids[i], ids[i]) << name << " " << layer << ":" << h << " r" << r << " side " << side;
              }
              ++compared;
            }
          }
        }
      }
    }
  }
  EXPECT_LT(worst_lse, 1e-5) << GetParam();
  EXPECT_LT(worst_logit, 1e-6) << GetParam();
  EXPECT_GT(compared, 100);
  std::printf("%s: %d top tokens compared; logsumexp within %.2g, logits within %.2g\n", GetParam().c_str(), compared,
              worst_lse, worst_logit);

  // Resuming with another rank is refused; with the same rank there is
  // nothing left to do.
  options.head_rank = kRank + 1;
  EXPECT_THROW(run_neuron_map(model, options, atlas), Error);
  options.head_rank = kRank;
  EXPECT_EQ(run_neuron_map(model, options, atlas).vectors_total, 0);
}

INSTANTIATE_TEST_SUITE_P(Families, HeadAtlas, ::testing::Values("qwen3", "gemma3", "gemma2", "olmo2", "phi3"));

TEST(HeadCircuits, RefusesBadLayersRanksAndKinds) {
  const Model model = Model::load(testing::committed_fixture("families/qwen3/model.gguf"));
  const ModelConfig& c = model.config();
  EXPECT_THROW(head_circuit_directions(model, HeadCircuit::Ov, c.n_layers, 1), Error);
  EXPECT_THROW(head_circuit_directions(model, HeadCircuit::Qk, 0, 0), Error);
  EXPECT_THROW(head_circuit_directions(model, HeadCircuit::Qk, 0, static_cast<int>(c.head_dim) + 1), Error);
  EXPECT_EQ(head_circuit_from_name("qk"), HeadCircuit::Qk);
  EXPECT_THROW(head_circuit_from_name("vo"), Error);
  const MapKinds both = parse_map_kinds("down,ov,qk,ov");
  EXPECT_EQ(both.kinds, std::vector<VectorKind>{VectorKind::Down});
  EXPECT_EQ(both.circuits, (std::vector<HeadCircuit>{HeadCircuit::Ov, HeadCircuit::Qk}));
  EXPECT_EQ(parse_map_kinds("all").kinds.size(), 3u);
  EXPECT_TRUE(parse_map_kinds("all").circuits.empty());
  EXPECT_THROW(parse_map_kinds("up,vo"), Error);
}

std::string cli(const std::string& args) { return testing::cli_path() + " " + args; }

// map --kinds ov,qk, show L:ov:H, find over heads, and their bad input.
TEST(HeadAtlasCli, MapShowFindAndErrors) {
  testing::ScratchDir dir;
  const std::string model = testing::committed_fixture("families/qwen3/model.gguf");
  const std::string atlas = dir.file("heads.db");
  const nlohmann::json ref = testing::read_json(testing::fixture_path("head_reference/qwen3.json"));
  std::string out;
  ASSERT_EQ(testing::run_command(cli("map " + model + " -o " + atlas + " --kinds down,ov,qk --head-rank 3 "
                                     "--precision exact --examples ''"), out), 0) << out;
  EXPECT_NE(out.find("ov heads: the 8 directions"), std::string::npos) << out;
  EXPECT_NE(out.find("qk heads"), std::string::npos) << out;

  // show --json: the reference's singular values and top tokens.
  out.clear();
  ASSERT_EQ(testing::run_command(cli("show " + atlas + " 1:ov:3 0:qk:2 --json"), out, false), 0) << out;
  const nlohmann::json shown = nlohmann::json::parse(out);
  ASSERT_EQ(shown.size(), 2u);
  EXPECT_EQ(shown[0]["kind"], "ov");
  EXPECT_EQ(shown[0]["head"], 3);
  ASSERT_EQ(shown[0]["directions"].size(), 3u);
  const nlohmann::json& want = ref["circuits"]["ov"][1][3][0];
  EXPECT_NEAR(shown[0]["directions"][0]["singular_value"].get<double>(), want["sigma"].get<double>(), 1e-9);
  EXPECT_EQ(shown[0]["directions"][0]["sides"][0]["side"], "out");
  EXPECT_EQ(shown[0]["directions"][0]["sides"][0]["top_tokens"][0]["id"], want["sides"][0]["top_ids"][0]);
  EXPECT_EQ(shown[0]["directions"][0]["sides"][1]["side"], "in");
  EXPECT_EQ(shown[1]["directions"][0]["sides"][1]["side"], "key");
  out.clear();
  ASSERT_EQ(testing::run_command(cli("show " + atlas + " 1:ov:3"), out), 0) << out;
  EXPECT_NE(out.find("OV circuit of head 3 in layer 1"), std::string::npos) << out;

  // find ranks the head directions whose decoded side holds the concept: an
  // OV direction whose reference out side has a word as its top token is
  // among the hits for that word, which come most probable first.
  const Model m = Model::load(model);
  int64_t want_layer = -1, want_head = -1, want_rank = -1;
  std::string token;
  for (size_t l = 0; l < ref["circuits"]["ov"].size() && want_layer < 0; ++l) {
    for (size_t h = 0; h < ref["circuits"]["ov"][l].size() && want_layer < 0; ++h) {
      for (size_t r = 0; r < ref["circuits"]["ov"][l][h].size() && want_layer < 0; ++r) {
        const std::string text = m.vocab().token(ref["circuits"]["ov"][l][h][r]["sides"][0]["top_ids"][0].get<int32_t>()).display;
        const bool word = text.size() >= 3 && std::all_of(text.begin(), text.end(), [](char ch) {
          return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == ' ';
        });
        if (word) {
          token = text;
          want_layer = static_cast<int64_t>(l);
          want_head = static_cast<int64_t>(h);
          want_rank = static_cast<int64_t>(r);
        }
      }
    }
  }
  ASSERT_GE(want_layer, 0) << "no OV direction of the reference has a word as its top output token";
  out.clear();
  ASSERT_EQ(testing::run_command(cli("find " + atlas + " --exact --json --kinds ov -n 200 '" + token + "'"), out, false),
            0) << out;
  const nlohmann::json found = nlohmann::json::parse(out);
  ASSERT_EQ(found.size(), 1u);
  EXPECT_TRUE(found[0]["neurons"].empty());
  bool listed = false;
  double previous = 2;
  for (const auto& h : found[0]["heads"]) {
    EXPECT_EQ(h["kind"], "ov");
    EXPECT_LE(h["prob"].get<double>(), previous);
    previous = h["prob"].get<double>();
    if (h["layer"] == want_layer && h["head"] == want_head && h["direction"] == want_rank && h["side"] == "out") {
      listed = true;
    }
  }
  EXPECT_TRUE(listed) << token << "\n" << out;

  auto expect_error = [&](const std::string& args, const std::string& message) {
    std::string text;
    EXPECT_EQ(testing::run_command(cli(args), text), 2) << args << "\n" << text;
    EXPECT_NE(text.find(message), std::string::npos) << args << "\n" << text;
  };
  expect_error("show " + atlas + " 1:ov:99", "head 99 is out of range");
  expect_error("show " + atlas + " 1:vo:3", "unknown neuron kind");
  // The atlas was made with --precision exact, so name it: on a CPU with bf16
  // units the default would differ first.
  expect_error("map " + model + " -o " + atlas + " --kinds ov --head-rank 4 --precision exact",
               "mapped with --head-rank 3, not 4");
  expect_error("map " + model + " -o " + dir.file("other.db") + " --kinds ov --head-rank 999", "head rank 999 is outside");
  expect_error("map " + model + " -o " + dir.file("other.db") + " --kinds ov,kq", "--kinds: unknown neuron kind 'kq'");
  const std::string neurons_only = dir.file("neurons.db");
  ASSERT_EQ(testing::run_command(cli("map " + model + " -o " + neurons_only + " --kinds down --examples ''"), out), 0);
  expect_error("show " + neurons_only + " 1:qk:0", "not mapped in this atlas (map --kinds qk)");
}

// The web API's heads: the list, one head, the overview's cells and info.
TEST(HeadAtlasServer, HeadsEndpointsServeTheAtlas) {
  testing::ScratchDir dir;
  const Model model = Model::load(testing::committed_fixture("families/qwen3/model.gguf"));
  const std::string path = dir.file("heads.db");
  {
    MapOptions options;
    options.kinds = {VectorKind::Down};
    options.circuits = {HeadCircuit::Ov};
    options.head_rank = 2;
    options.layers = {1};
    Atlas atlas = Atlas::create_or_resume(path, atlas_settings_for(model, options.settings), model.vocab());
    run_neuron_map(model, options, atlas);
  }
  server::ServeOptions options;
  options.atlas_path = path;
  options.no_model = true;
  testing::TestServer server(options);
  const auto info = server.get("/api/info");
  ASSERT_EQ(info.status, 200) << info.text;
  EXPECT_EQ(info.body["mapped"]["ov"], nlohmann::json({1}));
  EXPECT_TRUE(info.body["mapped"]["qk"].empty());
  EXPECT_EQ(info.body["head_rank"], 2);
  EXPECT_EQ(info.body["neurons"], model.config().d_ffn);  // neurons only, not head directions

  const auto list = server.get("/api/heads/1/ov?show_top=3");
  ASSERT_EQ(list.status, 200) << list.text;
  ASSERT_EQ(list.body["heads"].size(), static_cast<size_t>(model.config().n_heads));
  EXPECT_EQ(list.body["heads"][2]["directions"][0]["sides"][0]["top"].size(), 3u);

  const Atlas atlas = Atlas::open(path);
  const auto one = server.get("/api/heads/1/ov/2");
  ASSERT_EQ(one.status, 200) << one.text;
  const std::vector<AtlasHeadDirection> stored = atlas.head(HeadCircuit::Ov, 1, 2);
  ASSERT_EQ(one.body["directions"].size(), stored.size());
  EXPECT_EQ(one.body["directions"][1]["singular_value"], stored[1].singular_value);
  EXPECT_EQ(one.body["directions"][0]["sides"][1]["top"][0]["id"], stored[0].sides[1].top_ids[0]);
  EXPECT_EQ(one.body["neighbours"]["previous"], 1);

  const auto overview = server.get("/api/overview");
  ASSERT_EQ(overview.status, 200);
  EXPECT_NE(std::find(overview.body["kinds"].begin(), overview.body["kinds"].end(), "ov"), overview.body["kinds"].end());
  int ov_cells = 0;
  for (const auto& c : overview.body["cells"]) {
    if (c["kind"] == "ov") {
      ++ov_cells;
      EXPECT_EQ(c["neurons"], model.config().n_heads * 2);
    }
  }
  EXPECT_EQ(ov_cells, 1);

  EXPECT_EQ(server.get("/api/heads/0/ov").status, 404);
  EXPECT_EQ(server.get("/api/heads/1/qk/0").status, 404);
  EXPECT_EQ(server.get("/api/heads/1/ov/" + std::to_string(model.config().n_heads)).status, 404);
  EXPECT_EQ(server.get("/api/heads/1/xy").status, 400);
  EXPECT_EQ(server.get("/api/heads/99/ov").status, 400);
  EXPECT_EQ(server.get("/head/1/ov/2").status, 200);  // the page
}

}  // namespace
}  // namespace neuronlens

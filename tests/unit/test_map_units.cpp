// The map in units (neuronlens/map_units.h) and the jobs file
// (neuronlens/map_jobs.h): what the MPI map is built from, tested without
// MPI. A unit decoded alone equals the same unit of a one-process map; its
// bytes carry it to another process unchanged; a jobs file and a path
// mapping parse as documented, or fail naming the line.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/error.h"
#include "neuronlens/map_jobs.h"
#include "neuronlens/map_units.h"
#include "neuronlens/model.h"
#include "neuronlens/neuron_map.h"
#include "scratch_dir.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

void expect_same_decoding(const NeuronDecoding& a, const NeuronDecoding& b) {
  EXPECT_EQ(a.logsumexp, b.logsumexp);
  EXPECT_EQ(a.entropy, b.entropy);
  EXPECT_EQ(a.topk_mass, b.topk_mass);
  EXPECT_EQ(a.logsumexp_error, b.logsumexp_error);
  EXPECT_EQ(a.entropy_error, b.entropy_error);
  EXPECT_EQ(a.top_ids, b.top_ids);
  EXPECT_EQ(a.top_logits, b.top_logits);
}

void expect_same_unit(const MappedUnit& a, const MappedUnit& b) {
  EXPECT_TRUE(a.unit == b.unit);
  ASSERT_EQ(a.neurons.size(), b.neurons.size());
  for (size_t i = 0; i < a.neurons.size(); ++i) expect_same_decoding(a.neurons[i], b.neurons[i]);
  ASSERT_EQ(a.directions.size(), b.directions.size());
  for (size_t i = 0; i < a.directions.size(); ++i) {
    EXPECT_EQ(a.directions[i].head, b.directions[i].head);
    EXPECT_EQ(a.directions[i].rank, b.directions[i].rank);
    EXPECT_EQ(a.directions[i].singular_value, b.directions[i].singular_value);
    EXPECT_EQ(a.directions[i].left, b.directions[i].left);
    EXPECT_EQ(a.directions[i].right, b.directions[i].right);
  }
  for (int side = 0; side < 2; ++side) {
    ASSERT_EQ(a.sides[side].size(), b.sides[side].size());
    for (size_t i = 0; i < a.sides[side].size(); ++i) expect_same_decoding(a.sides[side][i], b.sides[side][i]);
  }
}

MapOptions tiny_options() {
  MapOptions options;
  options.circuits = {HeadCircuit::Ov, HeadCircuit::Qk};
  options.head_rank = 2;
  return options;
}

TEST(MapUnits, PlanListsWhatTheAtlasLacksInOrder) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  testing::ScratchDir dir;
  const MapOptions options = tiny_options();
  Atlas atlas = Atlas::create_or_resume(dir.file("a.db"), atlas_settings_for(model, options.settings), model.vocab());
  MapPlan plan = plan_neuron_map(model, options, atlas);
  // 2 layers x (up, gate, down) layer-major, then 2 circuits x 2 layers.
  ASSERT_EQ(plan.todo.size(), 10u);
  EXPECT_TRUE((plan.todo[1] == MapUnit{false, VectorKind::Gate, HeadCircuit::Ov, 0}));
  EXPECT_TRUE((plan.todo[3] == MapUnit{false, VectorKind::Up, HeadCircuit::Ov, 1}));
  EXPECT_TRUE((plan.todo[8] == MapUnit{true, VectorKind::Up, HeadCircuit::Qk, 0}));
  const ModelConfig& c = model.config();
  EXPECT_EQ(plan.vectors_total, 6 * c.d_ffn + 4 * c.n_heads * 2 * 2);
  EXPECT_EQ(map_unit_name(plan.todo[8]), "qk heads of layer 0");
  EXPECT_EQ(map_unit_name(plan.todo[3]), "up layer 1");

  const UnitMapper mapper(model, options);
  write_mapped_unit(atlas, mapper.map(plan.todo[3]));
  write_mapped_unit(atlas, mapper.map(plan.todo[8]));
  plan = plan_neuron_map(model, options, atlas);
  EXPECT_EQ(plan.todo.size(), 8u);
  EXPECT_EQ(plan.units_skipped, 2);

  MapOptions bad = options;
  bad.layers = {2};
  EXPECT_THROW(plan_neuron_map(model, bad, atlas), Error);
  bad = options;
  bad.head_rank = 3;  // the atlas's heads were mapped at rank 2
  EXPECT_THROW(plan_neuron_map(model, bad, atlas), Error);
}

// A unit decoded alone by UnitMapper (as a rank does) is written exactly as
// the one-process map writes it, which batches head layers together.
TEST(MapUnits, UnitsMappedOneByOneEqualTheOneProcessMap) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  testing::ScratchDir dir;
  const MapOptions options = tiny_options();
  Atlas whole = Atlas::create_or_resume(dir.file("whole.db"), atlas_settings_for(model, options.settings), model.vocab());
  run_neuron_map(model, options, whole);
  Atlas units = Atlas::create_or_resume(dir.file("units.db"), atlas_settings_for(model, options.settings), model.vocab());
  const UnitMapper mapper(model, options);
  const MapPlan plan = plan_neuron_map(model, options, units);
  for (auto it = plan.todo.rbegin(); it != plan.todo.rend(); ++it) {  // any order
    int64_t last = -1;
    const MappedUnit mapped = mapper.map(*it, [&](int64_t done) {
      EXPECT_GT(done, last);
      last = done;
    });
    EXPECT_EQ(last, map_unit_vectors(model.config(), options, *it));
    write_mapped_unit(units, mapped);
  }
  const ModelConfig& c = model.config();
  for (int64_t layer = 0; layer < c.n_layers; ++layer) {
    for (VectorKind kind : options.kinds) {
      for (int64_t i = 0; i < c.d_ffn; i += 7) {
        const auto a = whole.neuron(kind, layer, i), b = units.neuron(kind, layer, i);
        ASSERT_TRUE(a && b);
        EXPECT_EQ(a->logsumexp, b->logsumexp);
        EXPECT_EQ(a->entropy, b->entropy);
        EXPECT_EQ(a->top_ids, b->top_ids);
        EXPECT_EQ(a->top_logits, b->top_logits);
      }
    }
    for (HeadCircuit circuit : options.circuits) {
      for (int64_t h = 0; h < c.n_heads; ++h) {
        const auto a = whole.head(circuit, layer, h), b = units.head(circuit, layer, h);
        ASSERT_EQ(a.size(), 2u);
        ASSERT_EQ(b.size(), 2u);
        for (size_t r = 0; r < a.size(); ++r) {
          EXPECT_EQ(a[r].singular_value, b[r].singular_value);
          for (int side = 0; side < 2; ++side) {
            EXPECT_EQ(a[r].sides[side].top_ids, b[r].sides[side].top_ids);
            EXPECT_EQ(a[r].sides[side].top_logits, b[r].sides[side].top_logits);
          }
        }
      }
    }
  }
}

bool has_token_index(const std::string& path) {
  sqlite3* db = nullptr;
  bool found = false;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    sqlite3_prepare_v2(db, "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'neuron_tokens_by_token'", -1,
                       &st, nullptr);
    found = st != nullptr && sqlite3_step(st) == SQLITE_ROW;
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return found;
}

// The by-token index is dropped while a map writes and built once after;
// lookups by token give the same neurons either way.
TEST(MapUnits, TheTokenIndexIsBuiltOnceAfterTheWrites) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  testing::ScratchDir dir;
  MapOptions options;
  options.layers = {0};
  Atlas atlas = Atlas::create_or_resume(dir.file("a.db"), atlas_settings_for(model, options.settings), model.vocab());
  EXPECT_TRUE(has_token_index(dir.file("a.db")));
  const UnitMapper mapper(model, options);
  std::vector<Atlas::TokenHit> scanned;
  {
    Atlas::BulkWrite bulk(atlas);
    EXPECT_FALSE(has_token_index(dir.file("a.db")));
    write_mapped_unit(atlas, mapper.map(MapUnit{false, VectorKind::Up, HeadCircuit::Ov, 0}));
    scanned = atlas.neurons_with_token(atlas.neuron(VectorKind::Up, 0, 5)->top_ids.at(0));
    bulk.finish();
    EXPECT_TRUE(has_token_index(dir.file("a.db")));
  }
  const auto indexed = atlas.neurons_with_token(atlas.neuron(VectorKind::Up, 0, 5)->top_ids.at(0));
  ASSERT_FALSE(indexed.empty());
  ASSERT_EQ(indexed.size(), scanned.size());
  for (size_t i = 0; i < indexed.size(); ++i) {
    EXPECT_EQ(indexed[i].index, scanned[i].index);
    EXPECT_EQ(indexed[i].prob, scanned[i].prob);
  }
  {
    Atlas::BulkWrite interrupted(atlas);  // an error leaves the scope: still rebuilt
  }
  EXPECT_TRUE(has_token_index(dir.file("a.db")));
  run_neuron_map(model, options, atlas);
  EXPECT_TRUE(has_token_index(dir.file("a.db")));
}

// Integer metadata is parsed whole: "2x" is a corrupt atlas, never 2.
TEST(AtlasMetadata, AnIntegerWithTrailingTextIsACorruptAtlas) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  testing::ScratchDir dir;
  {
    Atlas atlas = Atlas::create_or_resume(dir.file("a.db"), atlas_settings_for(model, {}), model.vocab());
  }
  auto set_meta = [&](const std::string& key, const std::string& value) {
    sqlite3* db = nullptr;
    ASSERT_EQ(sqlite3_open(dir.file("a.db").c_str(), &db), SQLITE_OK);
    const std::string sql = "INSERT OR REPLACE INTO meta (key, value) VALUES ('" + key + "', '" + value + "')";
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr), SQLITE_OK);
    sqlite3_close(db);
  };
  set_meta("head_rank", "2x");
  try {
    Atlas::open(dir.file("a.db")).head_rank();
    ADD_FAILURE() << "head_rank '2x' was read";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), ErrorKind::BadFile);
    EXPECT_NE(std::string(e.what()).find("metadata 'head_rank' is '2x', expected an integer"), std::string::npos)
        << e.what();
  }
  set_meta("head_rank", "2");
  EXPECT_EQ(Atlas::open(dir.file("a.db")).head_rank(), 2);
  set_meta("d_ffn", "96 ");
  EXPECT_THROW(Atlas::open(dir.file("a.db")), Error);
}

TEST(MapUnits, BytesCarryAUnitUnchangedAndRefuseGarbage) {
  const Model model = Model::load(testing::fixture_path("tiny_llama.gguf"));
  const MapOptions options = tiny_options();
  const UnitMapper mapper(model, options);
  for (const MapUnit& unit : {MapUnit{false, VectorKind::Down, HeadCircuit::Ov, 1},
                              MapUnit{true, VectorKind::Up, HeadCircuit::Ov, 0}}) {
    const MappedUnit mapped = mapper.map(unit);
    const std::string bytes = serialize_mapped_unit(mapped);
    expect_same_unit(deserialize_mapped_unit(bytes), mapped);
    // Cut anywhere: an Error, never a crash or a short unit.
    for (size_t cut : {size_t{0}, size_t{3}, size_t{8}, size_t{20}, bytes.size() / 2, bytes.size() - 1}) {
      EXPECT_THROW(deserialize_mapped_unit(std::string_view(bytes).substr(0, cut)), Error) << cut;
    }
    EXPECT_THROW(deserialize_mapped_unit(bytes + "x"), Error);
    std::string wrong_version = bytes;
    wrong_version[4] = 9;
    EXPECT_THROW(deserialize_mapped_unit(wrong_version), Error);
    // A count of 2^60 items must not be believed.
    std::string huge_count = bytes;
    const uint64_t huge = uint64_t{1} << 60;
    std::memcpy(huge_count.data() + 4 + 4 + 1 + 1 + 8, &huge, sizeof huge);
    EXPECT_THROW(deserialize_mapped_unit(huge_count), Error);
  }
}

TEST(MapJobs, ParsesPairsQuotesAndComments) {
  const std::vector<MapJob> jobs = parse_map_jobs_text(
      "# checkpoints\n"
      "\n"
      "ckpt/step-0.gguf   atlas/step-0.db\n"
      "\t\"my models/step 100.gguf\" \"atlases/step 100.db\"  \r\n"
      "  # indented comment\n",
      "jobs.txt");
  ASSERT_EQ(jobs.size(), 2u);
  EXPECT_EQ(jobs[0].model, "ckpt/step-0.gguf");
  EXPECT_EQ(jobs[0].atlas, "atlas/step-0.db");
  EXPECT_EQ(jobs[1].model, "my models/step 100.gguf");
  EXPECT_EQ(jobs[1].atlas, "atlases/step 100.db");
}

TEST(MapJobs, BadLinesNameTheLine) {
  auto message = [](const std::string& text) {
    try {
      parse_map_jobs_text(text, "jobs.txt");
    } catch (const Error& e) {
      EXPECT_EQ(e.kind(), ErrorKind::BadInput);
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(message("a.gguf a.db\nb.gguf\n"), "jobs.txt line 2: expected 'MODEL ATLAS' (two paths), got 1 field");
  EXPECT_EQ(message("a.gguf a.db extra\n"), "jobs.txt line 1: expected 'MODEL ATLAS' (two paths), got 3 fields");
  EXPECT_EQ(message("\"a.gguf a.db\n"), "jobs.txt line 1: a quote is not closed");
  EXPECT_EQ(message("a.gguf x.db\nb.gguf x.db\n"), "jobs.txt line 2: atlas 'x.db' is written by an earlier line too");
  EXPECT_EQ(message("# nothing\n\n"), "jobs.txt: no job in it (expected lines of 'MODEL ATLAS')");
  EXPECT_EQ(message("\"\" a.db\n"), "jobs.txt line 1: an empty path (\"\")");

  testing::ScratchDir dir;
  EXPECT_THROW(parse_map_jobs(dir.file("missing.txt")), Error);
  std::ofstream(dir.file("jobs.txt")) << "m.gguf m.db\n";
  EXPECT_EQ(parse_map_jobs(dir.file("jobs.txt")).at(0).atlas, "m.db");
}

TEST(MapJobs, PathMappingsRewriteWholeComponents) {
  const std::vector<PathMapping> m = {parse_path_mapping("/home/me/models=/scratch/models"),
                                      parse_path_mapping("/data/=/mnt/data/")};
  EXPECT_EQ(apply_path_mappings("/home/me/models/x.gguf", m), "/scratch/models/x.gguf");
  EXPECT_EQ(apply_path_mappings("/home/me/models", m), "/scratch/models");
  EXPECT_EQ(apply_path_mappings("/home/me/modelsX/x.gguf", m), "/home/me/modelsX/x.gguf");
  EXPECT_EQ(apply_path_mappings("/data/a/b", m), "/mnt/data/a/b");
  EXPECT_EQ(apply_path_mappings("relative/x.gguf", m), "relative/x.gguf");
  EXPECT_EQ(apply_path_mappings("/x.gguf", {parse_path_mapping("/=/root2")}), "/root2/x.gguf");
  for (const char* bad : {"", "=", "/a=", "=/b", "/a"}) EXPECT_THROW(parse_path_mapping(bad), Error) << bad;
}

}  // namespace
}  // namespace neuronlens

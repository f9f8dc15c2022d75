// `mpirun neuronlens map`, end to end on this machine: ranks oversubscribe
// its cores, which changes the timing but not one stored value. The
// reference is the one-process map of the same model and options: every
// neuron, top-k and head row must be bit-identical (the tables compared with
// REALs printed in hex). Built only where the CLI has MPI
// (NEURONLENS_WITH_MPI, which passes NEURONLENS_TEST_MPIEXEC); a CLI
// without MPI is checked to refuse a multi-rank launch.
#include <gtest/gtest.h>
#include <sqlite3.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "scratch_dir.h"
#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

using testing::run_command;

std::string quoted(const std::string& path) { return "'" + path + "'"; }

// Every row of `table`, in key order, with REALs as hex floats (exact).
std::vector<std::string> table_rows(const std::string& db_path, const std::string& table) {
  sqlite3* db = nullptr;
  std::vector<std::string> rows;
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << "cannot open " << db_path;
    sqlite3_close(db);
    return rows;
  }
  sqlite3_stmt* st = nullptr;
  const std::string sql = "SELECT * FROM " + table + " ORDER BY 1, 2, 3, 4, 5";
  if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) != SQLITE_OK) {
    ADD_FAILURE() << db_path << ": " << sqlite3_errmsg(db);
    sqlite3_close(db);
    return rows;
  }
  while (sqlite3_step(st) == SQLITE_ROW) {
    std::string row;
    for (int c = 0; c < sqlite3_column_count(st); ++c) {
      char cell[64];
      switch (sqlite3_column_type(st, c)) {
        case SQLITE_FLOAT:
          std::snprintf(cell, sizeof cell, "%a", sqlite3_column_double(st, c));
          row += cell;
          break;
        case SQLITE_INTEGER:
          row += std::to_string(sqlite3_column_int64(st, c));
          break;
        default:
          row += reinterpret_cast<const char*>(sqlite3_column_text(st, c));
      }
      row += '|';
    }
    rows.push_back(row);
  }
  sqlite3_finalize(st);
  sqlite3_close(db);
  return rows;
}

// The first column of the first row `sql` gives, as text.
std::string query_one(const std::string& db_path, const std::string& sql) {
  sqlite3* db = nullptr;
  std::string result = "cannot open";
  if (sqlite3_open_v2(db_path.c_str(), &db, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK) {
    sqlite3_stmt* st = nullptr;
    result = "no row";
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) {
      result = reinterpret_cast<const char*>(sqlite3_column_text(st, 0));
    }
    sqlite3_finalize(st);
  }
  sqlite3_close(db);
  return result;
}

// Rows in `table`; 0 where the atlas has no such table yet (head tables are
// made with the first head layer).
int64_t count_rows(const std::string& db_path, const std::string& table) {
  if (query_one(db_path, "SELECT count(*) FROM sqlite_master WHERE name = '" + table + "'") != "1") return 0;
  return std::stoll(query_one(db_path, "SELECT count(*) FROM " + table));
}

std::string integrity(const std::string& db_path) { return query_one(db_path, "PRAGMA integrity_check"); }

void expect_same_atlas_rows(const std::string& expected, const std::string& actual, bool heads) {
  std::vector<std::string> tables = {"neurons", "neuron_tokens"};
  if (heads) tables.insert(tables.end(), {"head_directions", "head_tokens"});
  for (const std::string& table : tables) {
    const std::vector<std::string> want = table_rows(expected, table), got = table_rows(actual, table);
    EXPECT_FALSE(want.empty()) << table;
    EXPECT_EQ(want.size(), got.size()) << table;
    EXPECT_TRUE(want == got) << table << " differs between " << expected << " and " << actual;
  }
}

size_t occurrences(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// The CLI, without a launcher but with `environment` set, maps the tiny
// model into `atlas`; returns the exit code.
int map_tiny_with(const std::string& environment, const std::string& atlas, std::string& out) {
  return run_command(environment + " " + quoted(testing::cli_path()) + " map " +
                         quoted(testing::fixture_path("tiny_llama.gguf")) + " -o " + quoted(atlas),
                     out);
}

// srun without MPI wiring starts copies that each see a world of one.
TEST(MpiMap, UnwiredSlurmTasksAreRefused) {
  testing::ScratchDir dir;
  std::string out;
  EXPECT_EQ(map_tiny_with("SLURM_STEP_NUM_TASKS=4", dir.file("a.db"), out), 2) << out;
  EXPECT_NE(out.find("srun started 4 tasks, but they are not one MPI job"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.db")));
  out.clear();  // one task of a step: a plain map
  EXPECT_EQ(map_tiny_with("SLURM_STEP_NUM_TASKS=1", dir.file("b.db"), out), 0) << out;
}

#ifdef NEURONLENS_TEST_MPIEXEC

// Open MPI's launcher: as root (CI) it needs leave; ranks oversubscribe the
// two cores; its own allocations are not ours to leak-check.
std::string mpirun(int ranks, const std::string& extra_environment = "") {
  return "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 ASAN_OPTIONS=detect_leaks=0 " + extra_environment +
         " " + quoted(NEURONLENS_TEST_MPIEXEC) + " --oversubscribe -n " + std::to_string(ranks) + " " +
         quoted(testing::cli_path());
}

std::string cli() { return quoted(testing::cli_path()); }

TEST(MpiMap, ThreeRanksWriteTheOneProcessAtlasOfTheTinyModel) {
  testing::ScratchDir dir;
  const std::string model = quoted(testing::fixture_path("tiny_llama.gguf"));
  const std::string kinds = " --kinds all,ov,qk --head-rank 2";
  std::string out;
  ASSERT_EQ(run_command(cli() + " map " + model + " -o " + quoted(dir.file("one.db")) + kinds, out), 0) << out;
  const std::string one_process_summary = out.substr(out.find("per layer"));
  out.clear();
  ASSERT_EQ(run_command(mpirun(3) + " map " + model + " -o " + quoted(dir.file("mpi.db")) + kinds, out), 0) << out;
  expect_same_atlas_rows(dir.file("one.db"), dir.file("mpi.db"), true);
  EXPECT_NE(out.find("mpi: 3 ranks: 0@"), std::string::npos) << out;
  EXPECT_NE(out.find("writer (rank 0): 10 units"), std::string::npos) << out;
  // The per-layer summary is the one-process map's, printed once.
  ASSERT_NE(out.find("per layer"), std::string::npos) << out;
  EXPECT_EQ(out.substr(out.find("per layer")), one_process_summary);
  EXPECT_EQ(occurrences(out, "per layer"), 1u) << out;
}

TEST(MpiMap, ThreeRanksWriteTheOneProcessAtlasOfTheDefaultModel) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "three default-model maps are too slow under AddressSanitizer; the Release run checks this";
#endif
  const std::string path = testing::default_model_path();
  if (path.empty()) GTEST_SKIP() << "default model not fetched";
  testing::ScratchDir dir;
  const std::string args = quoted(path) + " --layers 0,29 --kinds up,down --examples dog";
  std::string out;
  ASSERT_EQ(run_command(cli() + " map " + args + " -o " + quoted(dir.file("one.db")), out), 0) << out;
  out.clear();
  ASSERT_EQ(run_command(mpirun(3) + " map " + args + " -o " + quoted(dir.file("mpi.db")), out), 0) << out;
  expect_same_atlas_rows(dir.file("one.db"), dir.file("mpi.db"), false);
  EXPECT_NE(out.find("mapped 6144 vectors (4 kind-layers, 0 already done)"), std::string::npos) << out;
}

// Rank 1 fails in the middle of its first unit (rank 0 hands every rank a
// unit before it maps one itself): rank 0 says so and exits non-zero after
// writing what the other ranks finished; a job with another rank count
// completes the atlas to the one-process one.
TEST(MpiMap, AFailingRankStopsTheJobAndAnotherRankCountCompletesIt) {
  testing::ScratchDir dir;
  const std::string args = quoted(testing::fixture_path("tiny_llama.gguf")) + " --kinds all,ov,qk --head-rank 2";
  const std::string atlas = quoted(dir.file("mpi.db"));
  std::string out;
  const int code = run_command(mpirun(3, "NEURONLENS_TEST_FAIL_RANK=1:0") + " map " + args + " -o " + atlas, out);
  EXPECT_NE(code, 0) << out;
  EXPECT_EQ(occurrences(out, "neuronlens: "), 1u) << out;
  EXPECT_NE(out.find("neuronlens: internal error: rank 1 (host "), std::string::npos) << out;
  EXPECT_NE(out.find("failed on "), std::string::npos) << out;
  EXPECT_NE(out.find("test fault switch"), std::string::npos) << out;
  EXPECT_EQ(integrity(dir.file("mpi.db")), "ok");
  // Rank 0 finishes the unit it had started, and writes it; rank 1's never
  // comes.
  const int64_t kept = count_rows(dir.file("mpi.db"), "layers_done") + count_rows(dir.file("mpi.db"), "head_layers_done");
  EXPECT_GE(kept, 1);
  EXPECT_LT(kept, 10);
  EXPECT_EQ(query_one(dir.file("mpi.db"), "SELECT count(*) FROM sqlite_master WHERE name = 'neuron_tokens_by_token'"),
            "1");

  out.clear();
  ASSERT_EQ(run_command(mpirun(2) + " map " + args + " -o " + atlas, out), 0) << out;
  EXPECT_NE(out.find(std::to_string(kept) + " already done"), std::string::npos) << out;
  out.clear();
  ASSERT_EQ(run_command(cli() + " map " + args + " -o " + quoted(dir.file("one.db")), out), 0) << out;
  expect_same_atlas_rows(dir.file("one.db"), dir.file("mpi.db"), true);
}

// Rank 2 is killed outright (SIGKILL, as when a node is lost): the launcher
// ends the job, the atlas is intact and a one-process run completes it.
TEST(MpiMap, AKilledRankLeavesAValidAtlasThatAPlainRunCompletes) {
  testing::ScratchDir dir;
  const std::string args = quoted(testing::fixture_path("tiny_llama.gguf"));
  const std::string atlas = quoted(dir.file("mpi.db"));
  std::string out;
  const int code = run_command(mpirun(3, "NEURONLENS_TEST_FAIL_RANK=2:0:kill") + " map " + args + " -o " + atlas, out);
  EXPECT_NE(code, 0) << out;
  // The launcher names the rank it lost. Rank 0's own note (what the atlas
  // keeps), written as the launcher stops it, is best effort: a launcher
  // tearing the job down may no longer forward it.
  EXPECT_NE(out.find("exited on signal 9"), std::string::npos) << out;
  EXPECT_EQ(integrity(dir.file("mpi.db")), "ok");
  EXPECT_LT(count_rows(dir.file("mpi.db"), "layers_done"), 6);  // rank 2's unit never came
  out.clear();
  ASSERT_EQ(run_command(cli() + " map " + args + " -o " + atlas, out), 0) << out;
  out.clear();
  ASSERT_EQ(run_command(cli() + " map " + args + " -o " + quoted(dir.file("one.db")), out), 0) << out;
  expect_same_atlas_rows(dir.file("one.db"), dir.file("mpi.db"), false);
}

TEST(MpiMap, JobsOfSeveralModelsSpreadOverTheRanks) {
  testing::ScratchDir dir;
  const std::string untied = testing::fixture_path("tiny_llama.gguf"), tied = testing::fixture_path("tiny_llama_tied.gguf");
  std::ofstream(dir.file("jobs.txt")) << "# two models\n" << untied << " " << dir.file("untied.db") << "\n"
                                      << "\"" << tied << "\" \"" << dir.file("tied.db") << "\"\n";
  std::string out;
  ASSERT_EQ(run_command(mpirun(3) + " map --jobs " + quoted(dir.file("jobs.txt")), out), 0) << out;
  EXPECT_NE(out.find("writer (rank 0): 12 units"), std::string::npos) << out;
  EXPECT_NE(out.find("== job 2 of 2: " + tied), std::string::npos) << out;
  out.clear();
  // The same jobs file without MPI: one after the other, the same atlases.
  std::ofstream(dir.file("jobs1.txt")) << untied << " " << dir.file("untied1.db") << "\n"
                                       << tied << " " << dir.file("tied1.db") << "\n";
  ASSERT_EQ(run_command(cli() + " map --jobs " + quoted(dir.file("jobs1.txt")), out), 0) << out;
  expect_same_atlas_rows(dir.file("untied1.db"), dir.file("untied.db"), false);
  expect_same_atlas_rows(dir.file("tied1.db"), dir.file("tied.db"), false);
}

// Bad input: one clear error from rank 0, exit 2, no atlas written.
TEST(MpiMap, BadInputIsOneErrorFromRankZero) {
  testing::ScratchDir dir;
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  auto expect_error = [&](const std::string& args, const std::string& message) {
    std::string out;
    EXPECT_EQ(run_command(mpirun(3) + " map " + args, out), 2) << args << "\n" << out;
    EXPECT_NE(out.find("neuronlens: error: " + message), std::string::npos) << args << "\n" << out;
    EXPECT_EQ(occurrences(out, "neuronlens: "), 1u) << out;
  };
  // Ranks other than 0 read another file at the mapped path.
  std::filesystem::create_directories(dir.file("other"));
  std::filesystem::copy_file(testing::fixture_path("tiny_llama_tied.gguf"), dir.file("other/tiny_llama.gguf"));
  const std::string fixtures = std::filesystem::path(model).parent_path().string();
  expect_error(quoted(model) + " -o " + quoted(dir.file("a.db")) + " --model-path " + quoted(fixtures + "=" + dir.file("other")),
               "rank 1 (host ");
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.db")));
  // ... or find nothing there.
  expect_error(quoted(model) + " -o " + quoted(dir.file("a.db")) + " --model-path " + quoted(fixtures + "=/nonexistent"),
               "rank 1 (host ");
  expect_error(quoted(model) + " -o " + quoted(dir.file("no/such/dir/a.db")), "");
  std::ofstream(dir.file("jobs.txt")) << model << " " << dir.file("x.db") << "\n" << model << "\n";
  expect_error("--jobs " + quoted(dir.file("jobs.txt")), dir.file("jobs.txt") + " line 2: expected");
  expect_error("--jobs " + quoted(dir.file("jobs.txt")) + " " + quoted(model), "give either MODEL");
  expect_error(quoted(model) + " -o " + quoted(dir.file("a.db")) + " --layers 7", "--layers: layer 7 is out of range");
  expect_error(quoted(model) + " -o " + quoted(dir.file("a.db")) + " --model-path nowhere", "--model-path: 'nowhere'");
}

TEST(MpiMap, MismatchedModelMessageNamesBothHashes) {
  testing::ScratchDir dir;
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  std::filesystem::create_directories(dir.file("other"));
  std::filesystem::copy_file(testing::fixture_path("tiny_llama_tied.gguf"), dir.file("other/tiny_llama.gguf"));
  const std::string fixtures = std::filesystem::path(model).parent_path().string();
  std::string out;
  EXPECT_EQ(run_command(mpirun(2) + " map " + quoted(model) + " -o " + quoted(dir.file("a.db")) + " --model-path " +
                            quoted(fixtures + "=" + dir.file("other")),
                        out),
            2)
      << out;
  EXPECT_NE(out.find("reads " + dir.file("other/tiny_llama.gguf") + " with sha256 "), std::string::npos) << out;
  EXPECT_NE(out.find("but rank 0 reads " + model + " with sha256 "), std::string::npos) << out;
}

#else

TEST(MpiMap, ACliWithoutMpiRefusesSeveralRanks) {
  testing::ScratchDir dir;
  std::string out;
  EXPECT_EQ(map_tiny_with("OMPI_COMM_WORLD_SIZE=3", dir.file("a.db"), out), 2) << out;
  EXPECT_NE(out.find("built without MPI"), std::string::npos) << out;
  EXPECT_FALSE(std::filesystem::exists(dir.file("a.db")));
}

#endif

}  // namespace
}  // namespace neuronlens

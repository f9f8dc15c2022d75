// The atlas writer alone: how many rows a second rank 0 of an MPI map (or a
// one-process map) writes, as the atlas grows. Writes `units` synthetic
// neuron units of `neurons` vectors each with top-k tokens drawn at random
// (a Llama-3.1-70B up/gate/down layer is 28,672 neurons, top-k 20) through
// write_mapped_unit inside one Atlas::BulkWrite, then builds the token
// index, and prints each unit's rows/s and the whole run's. The baseline in
// the same process: the same units with the by-token index kept up to date
// row by row, as every map did before BulkWrite (`--baseline-units` of them;
// 0 skips it).
//
// usage: atlas_writer_bench [--neurons 28672] [--units 8] [--top-k 20] [--vocab 128256]
//                           [--baseline-units 4] [--dir /tmp]
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <optional>
#include <random>
#include <string>

#include "neuronlens/atlas.h"
#include "neuronlens/map_units.h"
#include "neuronlens/vocab.h"

using namespace neuronlens;
using Clock = std::chrono::steady_clock;

namespace {

MappedUnit random_unit(int64_t layer, int64_t neurons, int top_k, int32_t vocab, std::mt19937& rng) {
  MappedUnit m;
  m.unit = MapUnit{false, VectorKind::Up, HeadCircuit::Ov, layer};
  m.neurons.resize(static_cast<size_t>(neurons));
  std::uniform_int_distribution<int32_t> token(0, vocab - 1);
  std::normal_distribution<double> logit(10, 2);
  for (NeuronDecoding& n : m.neurons) {
    n.logsumexp = 14;
    n.entropy = 5;
    for (int k = 0; k < top_k; ++k) {
      n.top_ids.push_back(token(rng));
      n.top_logits.push_back(logit(rng));
    }
    std::sort(n.top_logits.rbegin(), n.top_logits.rend());
  }
  return m;
}

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Writes `units` units; with `bulk` inside one BulkWrite. Returns rows/s over
// the writes and the index build.
double run(const std::string& path, int64_t units, int64_t neurons, int top_k, int32_t vocab, bool bulk) {
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  AtlasSettings settings;
  settings.model_name = "synthetic";
  settings.model_sha256 = "0";
  settings.d_ffn = neurons;
  settings.vocab_size = vocab;
  settings.top_k = top_k;
  std::vector<std::string> tokens;
  for (int32_t t = 0; t < vocab; ++t) {
    std::string token = "t";  // in steps: GCC 12 warns falsely on "t" + to_string
    token += std::to_string(t);
    tokens.push_back(token);
  }
  const Vocabulary vocabulary = Vocabulary::from_tokens(VocabEncoding::ByteLevelBpe, tokens);
  Atlas atlas = Atlas::create_or_resume(path, settings, vocabulary);
  std::mt19937 rng(7);
  const int64_t rows_per_unit = neurons * (1 + top_k);
  const auto start = Clock::now();
  std::optional<Atlas::BulkWrite> writing;
  if (bulk) writing.emplace(atlas);
  for (int64_t u = 0; u < units; ++u) {
    const MappedUnit m = random_unit(u, neurons, top_k, vocab, rng);
    const auto t = Clock::now();
    write_mapped_unit(atlas, m);
    const double s = seconds_since(t);
    std::printf("  %s unit %lld: %.2f s, %.0f rows/s\n", bulk ? "bulk " : "index", static_cast<long long>(u), s,
                static_cast<double>(rows_per_unit) / s);
  }
  const double write_seconds = seconds_since(start);
  double index_seconds = 0;
  if (bulk) {
    const auto t = Clock::now();
    writing->finish();
    index_seconds = seconds_since(t);
    std::printf("  token index built in %.2f s\n", index_seconds);
    std::printf("writes alone: %.0f rows/s; the index at the end: %.0f rows/s\n",
                static_cast<double>(units * rows_per_unit) / write_seconds,
                static_cast<double>(units * rows_per_unit) / index_seconds);
  }
  const double total = seconds_since(start);
  std::printf("%s: %lld units, %lld rows in %.2f s: %.0f rows/s, %.2f s a unit\n",
              bulk ? "BulkWrite (index once at the end)" : "index kept up to date (before)",
              static_cast<long long>(units), static_cast<long long>(units * rows_per_unit), total,
              static_cast<double>(units * rows_per_unit) / total, total / static_cast<double>(units));
  return static_cast<double>(units * rows_per_unit) / total;
}

}  // namespace

int main(int argc, char** argv) {
  int64_t neurons = 28672, units = 8, baseline_units = 4;
  int top_k = 20;
  int32_t vocab = 128256;
  std::string dir = std::filesystem::temp_directory_path().string();
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    const char* v = argv[i + 1];
    if (a == "--neurons") neurons = std::atoll(v);
    else if (a == "--units") units = std::atoll(v);
    else if (a == "--top-k") top_k = std::atoi(v);
    else if (a == "--vocab") vocab = std::atoi(v);
    else if (a == "--baseline-units") baseline_units = std::atoll(v);
    else if (a == "--dir") dir = v;
    else {
      std::fprintf(stderr, "unknown option %s\n", a.c_str());
      return 2;
    }
  }
  const std::string path = dir + "/atlas_writer_bench.db";
  const double bulk = run(path, units, neurons, top_k, vocab, true);
  if (baseline_units > 0) {
    const double before = run(path, baseline_units, neurons, top_k, vocab, false);
    std::printf("BulkWrite / before: %.2fx the rows/s\n", bulk / before);
  }
  for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(path + suffix);
  return 0;
}

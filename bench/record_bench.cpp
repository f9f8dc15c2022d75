// `record`'s cost over the forward pass it rides on: the same corpus chunks
// through (1) the forward pass alone, (2) the forward pass with the record's
// bookkeeping at every layer (LayerContextTracker, in memory), and (3) the
// whole record job into a fresh atlas (its checkpoints, every 60 s and at
// the end, included).
// Prints tokens/s and the ratios to (1), run in this process, (1) timed
// before and after the others (the faster counts).
//   record_bench MODEL CORPUS [MAX_TOKENS=8192] [SEQ_LEN=256] [THREADS=0]
// The goal (issue 18): (3) at >= 0.8x of (1).
#include <omp.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "analysis/top_contexts.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/neuron_record.h"
#include "neuronlens/runtime.h"
#include "neuronlens/text_model.h"

using namespace neuronlens;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

double forward_pass(const Model& model, const TokenCorpus& corpus, bool track) {
  Session session(model);
  std::vector<std::unique_ptr<LayerContextTracker>> trackers;
  int64_t chunk_index = 0;
  if (track) {
    for (int64_t l = 0; l < model.config().n_layers; ++l) {
      trackers.push_back(std::make_unique<LayerContextTracker>(model.config().d_ffn, 20, 16, 0.1));
    }
    session.add_hook(HookPoint::MlpAct, kEveryLayer,
                     [&](int64_t layer, HookPoint, float* data, int64_t n, int64_t, int64_t) {
                       trackers[static_cast<size_t>(layer)]->add_chunk(data, n, chunk_index);
                     });
  }
  const auto start = Clock::now();
  for (const auto& chunk : corpus.chunks) {
    session.reset();
    (void)session.forward(chunk, LogitsFor::LastToken);
    ++chunk_index;
  }
  return seconds_since(start);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s MODEL CORPUS [MAX_TOKENS=8192] [SEQ_LEN=256] [THREADS=0]\n", argv[0]);
    return 2;
  }
  try {
    const int64_t max_tokens = argc > 3 ? std::atoll(argv[3]) : 8192;
    const int64_t seq_len = argc > 4 ? std::atoll(argv[4]) : 256;
    if (argc > 5 && std::atoi(argv[5]) > 0) omp_set_num_threads(std::atoi(argv[5]));
    const TextModel tm = TextModel::load(argv[1]);
    CorpusOptions corpus_options;
    corpus_options.max_tokens = max_tokens;
    corpus_options.seq_len = seq_len;
    const TokenCorpus corpus = tokenize_corpus({argv[2]}, tm.tokenizer, corpus_options);
    const double tokens = static_cast<double>(corpus.tokens());
    std::printf("%s: %lld tokens in %zu chunks of <= %lld, %d threads\n", tm.model.path().c_str(),
                static_cast<long long>(corpus.tokens()), corpus.chunks.size(), static_cast<long long>(seq_len),
                omp_get_max_threads());
    const double forward_before = forward_pass(tm.model, corpus, false);
    const double tracked = forward_pass(tm.model, corpus, true);
    const std::string atlas_path = (std::filesystem::temp_directory_path() / "record_bench.db").string();
    std::filesystem::remove(atlas_path);
    double job = 0;
    {
      Atlas atlas = Atlas::create_or_resume(atlas_path, atlas_settings_for(tm.model, DecodeSettings{}), tm.model.vocab());
      RecordOptions options;  // the CLI's defaults: a checkpoint every 60 s and at the end
      const auto start = Clock::now();
      run_neuron_record(tm.model, corpus, options, atlas);
      job = seconds_since(start);
    }
    const double atlas_bytes = static_cast<double>(std::filesystem::file_size(atlas_path));
    std::filesystem::remove(atlas_path);
    const double forward_after = forward_pass(tm.model, corpus, false);
    const double forward = std::min(forward_before, forward_after);
    std::printf("%-44s %9.1f tokens/s  %5.2fx\n", "forward pass alone (faster of 2 runs)", tokens / forward, 1.0);
    std::printf("%-44s %9.1f tokens/s  %5.2fx\n", "forward + record bookkeeping (in memory)", tokens / tracked,
                forward / tracked);
    std::printf("%-44s %9.1f tokens/s  %5.2fx  (atlas %.1f MB)\n", "record job (atlas written)", tokens / job,
                forward / job, atlas_bytes / 1e6);
  } catch (const Error& e) {
    std::fprintf(stderr, "record_bench: %s\n", e.what());
    return 2;
  }
  return 0;
}

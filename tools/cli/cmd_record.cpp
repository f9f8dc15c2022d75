// `neuronlens record MODEL --corpus FILE... -o ATLAS.db`: the model over a
// text corpus, every FFN neuron's top contexts (both signs) and statistics
// into the atlas (neuronlens/neuron_record.h); resumes an interrupted run.
#include <omp.h>

#include <cstdio>

#include "agreement_report.h"
#include "commands.h"
#include "format.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_record.h"
#include "neuronlens/text_model.h"
#include "progress_bar.h"

namespace neuronlens::cli {
namespace {

struct RecordCommandOptions {
  std::string model;
  std::vector<std::string> corpus;
  std::string atlas;
  int64_t seq_len = 256;
  int64_t max_tokens = 0;
  RecordOptions record;
  std::string plot;
  int threads = 0;
};

int run_record(const RecordCommandOptions& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  const TextModel tm = TextModel::load(opt.model);
  CorpusOptions corpus_options;
  corpus_options.seq_len = opt.seq_len;
  corpus_options.max_tokens = opt.max_tokens;
  const TokenCorpus corpus = tokenize_corpus(opt.corpus, tm.tokenizer, corpus_options);
  std::fprintf(stderr, "corpus: %zu file(s), %zu chunks, %lld tokens (%lld recorded)\n", corpus.files.size(),
               corpus.chunks.size(), static_cast<long long>(corpus.tokens()),
               static_cast<long long>(corpus.recorded_tokens()));
  std::fprintf(stderr, "hashing %s ...\n", tm.model.path().c_str());
  Atlas atlas = open_atlas_for_record(tm.model, opt.atlas);
  ProgressBar bar("recording", "chunks");
  const RecordProgress done = run_neuron_record(tm.model, corpus, opt.record, atlas, [&](const RecordProgress& p) {
    bar.update(p.chunks_done, p.chunks_total);
  });
  const double seconds = bar.finish();
  if (done.tokens_done == 0) {
    std::printf("%s already holds this record (%lld chunks); nothing to do\n", opt.atlas.c_str(),
                static_cast<long long>(done.chunks_total));
  } else {
    std::printf("recorded %lld tokens (%lld chunks, %lld already done) in %s: %.0f tokens/s -> %s\n",
                static_cast<long long>(done.tokens_done), static_cast<long long>(done.chunks_done - done.chunks_skipped),
                static_cast<long long>(done.chunks_skipped), human_seconds(seconds).c_str(),
                static_cast<double>(done.tokens_done) / seconds, opt.atlas.c_str());
  }
  std::printf("`neuronlens show %s LAYER:gate:INDEX` prints a neuron's top contexts\n", opt.atlas.c_str());
  const std::optional<ContextAgreementReport> agreement = print_agreement(atlas);
  if (!opt.plot.empty()) {
    if (!agreement) throw bad_input("--plot: the agreement plot needs the down kind mapped into " + opt.atlas);
    write_text_file("--plot", opt.plot,
                    agreement_svg(*agreement, atlas.settings().model_name + ": weight decode vs. corpus contexts"));
    std::printf("agreement plot -> %s\n", opt.plot.c_str());
  }
  return 0;
}

}  // namespace

Runner add_record_command(CLI::App& app) {
  auto opt = std::make_shared<RecordCommandOptions>();
  CLI::App* cmd = app.add_subcommand(
      "record", "Run the model over a text corpus and keep every FFN neuron's top contexts and statistics");
  cmd->add_option("model", opt->model, "GGUF file or Hugging Face model folder")->required();
  cmd->add_option("--corpus", opt->corpus,
                  "Corpus files: plain text (one document each) or .jsonl (one document per line, its \"text\")")
      ->required();
  cmd->add_option("-o,--output", opt->atlas, "Atlas file to write into or resume (SQLite; created if absent)")
      ->required();
  cmd->add_option("--seq-len", opt->seq_len, "Tokens per sequence the model runs (the BOS included)")
      ->capture_default_str();
  cmd->add_option("--max-tokens", opt->max_tokens, "Stop after this many corpus tokens (0: the whole corpus)")
      ->capture_default_str();
  cmd->add_option("--contexts", opt->record.contexts, "Top contexts kept per neuron and sign")->capture_default_str();
  cmd->add_option("--window", opt->record.window, "Tokens kept either side of a context, for display")
      ->capture_default_str();
  cmd->add_option("--density-threshold", opt->record.density_threshold,
                  "|activation| above which a token counts toward a neuron's density")
      ->capture_default_str();
  cmd->add_option("--checkpoint-seconds", opt->record.checkpoint_seconds,
                  "Seconds between checkpoints an interrupted record resumes from (0: after every chunk)")
      ->capture_default_str();
  cmd->add_option("--plot", opt->plot,
                  "Write the agreement per layer (needs the down kind mapped in the atlas) as an SVG plot");
  cmd->add_option("--threads", opt->threads, "Worker threads (default: all cores)");
  return [opt] { return run_record(*opt); };
}

}  // namespace neuronlens::cli

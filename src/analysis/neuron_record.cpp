// The record job (neuronlens/neuron_record.h): the model over the corpus's
// chunks, the activations at every layer into a LayerContextTracker, and a
// checkpoint to the atlas every so often.
#include "neuronlens/neuron_record.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>

#include "io/sha256.h"
#include "neuronlens/error.h"
#include "neuronlens/neuron_map.h"
#include "neuronlens/runtime.h"
#include "top_contexts.h"

namespace neuronlens {
namespace {

// What makes two records the same: the corpus's files and chunking and the
// options; the digest of it in words is stored as the record's identity.
std::string record_identity(const TokenCorpus& corpus, const RecordOptions& options) {
  std::string text = "neuronlens record v1\n";
  for (const CorpusFile& f : corpus.files) {
    text += "file " + f.name + " " + f.sha256 + " " + std::to_string(f.bytes) + "\n";
  }
  char threshold[32];
  std::snprintf(threshold, sizeof threshold, "%.17g", options.density_threshold);
  text += "seq_len " + std::to_string(corpus.seq_len) + " chunks " + std::to_string(corpus.chunks.size()) +
          " tokens " + std::to_string(corpus.tokens()) + " contexts " + std::to_string(options.contexts) +
          " window " + std::to_string(options.window) + " density_threshold " + threshold + "\n";
  Sha256 hash;
  hash.update(text.data(), text.size());
  return hash.hex_digest();
}

void check_options(const RecordOptions& options) {
  if (options.contexts < 1 || options.contexts > 1000) throw bad_input("--contexts must be between 1 and 1000");
  if (options.window < 0 || options.window > 256) throw bad_input("--window must be between 0 and 256");
  if (!std::isfinite(options.density_threshold) || options.density_threshold < 0) {
    throw bad_input("--density-threshold must be a number >= 0");
  }
  if (!std::isfinite(options.checkpoint_seconds) || options.checkpoint_seconds < 0) {
    throw bad_input("the checkpoint interval must be >= 0 seconds");
  }
}

// The atlas must be of this model: same shape (the CLI has checked the
// sha256 when it opened the atlas for writing).
void check_atlas_model(const Model& model, const Atlas& atlas) {
  const AtlasSettings& s = atlas.settings();
  const ModelConfig& c = model.config();
  if (s.n_layers != c.n_layers || s.d_ffn != c.d_ffn || s.vocab_size != c.vocab_size) {
    throw bad_input(atlas.path() + ": this atlas is of " + s.model_name + " (" + std::to_string(s.n_layers) +
                    " layers, " + std::to_string(s.d_ffn) + " neurons each), not of this model");
  }
}

}  // namespace

Atlas open_atlas_for_record(const Model& model, const std::string& path) {
  AtlasSettings settings = atlas_settings_for(model, DecodeSettings{});
  if (std::filesystem::exists(path)) {
    const AtlasSettings have = Atlas::open(path).settings();
    settings.norm = have.norm;
    settings.read_norm = have.read_norm;
    settings.top_k = have.top_k;
    settings.precision = have.precision;
  }
  return Atlas::create_or_resume(path, settings, model.vocab());
}

RecordProgress run_neuron_record(const Model& model, const TokenCorpus& corpus, const RecordOptions& options,
                                 Atlas& atlas, const std::function<void(const RecordProgress&)>& on_progress) {
  check_options(options);
  check_atlas_model(model, atlas);
  if (corpus.chunks.empty() || corpus.chunks.size() != corpus.chunk_file.size()) {
    throw bad_input("the corpus has no chunks to record");
  }
  if (corpus.seq_len > kMaxRecordSeqLen || corpus.chunks.size() > (size_t{1} << 31)) {
    throw bad_input("the corpus's chunks are longer than " + std::to_string(kMaxRecordSeqLen) +
                    " tokens, or more than 2^31");
  }
  const int64_t vocab = model.config().vocab_size;
  for (const auto& chunk : corpus.chunks) {
    if (static_cast<int64_t>(chunk.size()) > corpus.seq_len) throw internal_error("a corpus chunk is past seq_len");
    for (int32_t id : chunk) {
      if (id < 0 || id >= vocab) throw bad_input("corpus token id " + std::to_string(id) + " is outside the vocabulary");
    }
  }

  RecordInfo info;
  info.files = corpus.files;
  info.seq_len = corpus.seq_len;
  info.chunks_total = static_cast<int64_t>(corpus.chunks.size());
  info.contexts = options.contexts;
  info.window = options.window;
  info.density_threshold = options.density_threshold;
  info.identity = record_identity(corpus, options);
  const std::optional<RecordInfo> existing = atlas.record_info();
  if (existing && existing->identity != info.identity) {
    std::string names;
    for (const CorpusFile& f : existing->files) names += (names.empty() ? "" : ", ") + f.name;
    throw bad_input(atlas.path() + ": this atlas holds a record of another corpus or other options (" + names +
                    ", --seq-len " + std::to_string(existing->seq_len) + ", --contexts " +
                    std::to_string(existing->contexts) + "); write to a new atlas file");
  }
  if (!existing) atlas.begin_record(info, corpus.chunks, corpus.chunk_file);

  const ModelConfig& config = model.config();
  std::vector<std::unique_ptr<LayerContextTracker>> trackers;
  for (int64_t layer = 0; layer < config.n_layers; ++layer) {
    trackers.push_back(std::make_unique<LayerContextTracker>(config.d_ffn, options.contexts, options.window,
                                                             options.density_threshold));
  }
  RecordProgress progress;
  progress.chunks_total = info.chunks_total;
  int64_t tokens_recorded = 0;
  if (existing && existing->chunks_done > 0) {
    const auto states = atlas.record_states();
    if (static_cast<int64_t>(states.size()) != config.n_layers) {
      throw bad_file(atlas.path() + ": corrupt atlas: the record's checkpoint has " + std::to_string(states.size()) +
                     " layers, the model " + std::to_string(config.n_layers));
    }
    for (int64_t layer = 0; layer < config.n_layers; ++layer) trackers[static_cast<size_t>(layer)]->restore(states[static_cast<size_t>(layer)]);
    progress.chunks_done = progress.chunks_skipped = existing->chunks_done;
    tokens_recorded = existing->tokens_recorded;
  }
  if (progress.chunks_done >= progress.chunks_total) return progress;

  Session session(model);
  int64_t current_chunk = 0;
  session.add_hook(HookPoint::MlpAct, kEveryLayer,
                   [&](int64_t layer, HookPoint, float* data, int64_t n_tokens, int64_t width, int64_t first) {
                     if (first != 0 || width != config.d_ffn) throw internal_error("record: unexpected hook call");
                     trackers[static_cast<size_t>(layer)]->add_chunk(data, n_tokens, current_chunk);
                   });
  using Clock = std::chrono::steady_clock;
  auto last_checkpoint = Clock::now();
  // A checkpoint rewrites every neuron's rows (for SmolLM2-135M about
  // 130 MB): the next waits at least 20 times as long as the last took, so
  // checkpoints cost at most about 5% of the run whatever the model's size.
  double interval = options.checkpoint_seconds;
  const auto checkpoint = [&] {
    const auto start = Clock::now();
    std::vector<std::vector<NeuronRecordState>> states;
    states.reserve(trackers.size());
    for (const auto& t : trackers) states.push_back(t->state());
    atlas.write_record_checkpoint(progress.chunks_done, tokens_recorded, states);
    last_checkpoint = Clock::now();
    const double took = std::chrono::duration<double>(last_checkpoint - start).count();
    if (options.checkpoint_seconds > 0) interval = std::max(options.checkpoint_seconds, 20 * took);
  };
  for (int64_t c = progress.chunks_done; c < progress.chunks_total; ++c) {
    const std::vector<int32_t>& chunk = corpus.chunks[static_cast<size_t>(c)];
    current_chunk = c;
    session.reset();
    (void)session.forward(chunk, LogitsFor::LastToken);
    tokens_recorded += static_cast<int64_t>(chunk.size()) - 1;
    progress.tokens_done += static_cast<int64_t>(chunk.size());
    progress.chunks_done = c + 1;
    const double since = std::chrono::duration<double>(Clock::now() - last_checkpoint).count();
    if (progress.chunks_done == progress.chunks_total || since >= interval) checkpoint();
    if (on_progress) on_progress(progress);
  }
  return progress;
}

std::vector<ContextToken> context_window(const Atlas& atlas, const NeuronContext& context) {
  const std::vector<int32_t> tokens = atlas.corpus_chunk(context.chunk);
  const int64_t start = context.window_start, end = start + static_cast<int64_t>(context.window.size());
  if (start < 0 || end > static_cast<int64_t>(tokens.size()) || context.offset < start || context.offset >= end) {
    throw bad_file(atlas.path() + ": corrupt atlas: a context window [" + std::to_string(start) + ", " +
                   std::to_string(end) + ") around offset " + std::to_string(context.offset) + " does not fit chunk " +
                   std::to_string(context.chunk) + " of " + std::to_string(tokens.size()) + " tokens");
  }
  std::vector<ContextToken> out;
  for (int64_t t = start; t < end; ++t) {
    ContextToken token;
    token.id = tokens[static_cast<size_t>(t)];
    token.text = atlas.token_text(token.id);
    token.fired = t == context.offset;
    token.activation = token.fired ? context.activation
                                   : static_cast<float>(context.window[static_cast<size_t>(t - start)]) *
                                         context.window_scale;
    out.push_back(std::move(token));
  }
  return out;
}

}  // namespace neuronlens

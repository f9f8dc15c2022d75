// Evidence from text: the contexts in a corpus that make each FFN neuron fire,
// beside what its weights decode to (Neuroscope, OpenAI's neuron viewer and
// Neuronpedia show top-activating snippets; the weight decode of
// arXiv 2501.02688 says what a neuron would write).
//
// `record` runs the model over a corpus with the neuron activations
// (HookPoint::MlpAct, act(gate) * up) read at every layer, and keeps for
// every neuron:
//   - its top `contexts` positive activations and its top `contexts`
//     negative ones (SwiGLU activations take both signs), each with where it
//     happened and the neuron's activation over the tokens around it;
//   - its mean, standard deviation, max |activation| and density (the share
//     of tokens with |activation| > `density_threshold`) over the corpus.
// Ties are broken by position: the earlier (chunk, offset) ranks first.
//
// The corpus is cut into chunks of at most `seq_len` tokens, each run as its
// own sequence from position 0. A chunk starts with the model's BOS token
// where the tokenizer has one; offset 0 of a chunk (the BOS, or else the
// chunk's first token, which the model then treats as one) is never recorded:
// it is where attention sinks, not the text, decide the activations.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/neuron_evidence.h"
#include "neuronlens/model.h"
#include "neuronlens/tokenizer.h"

namespace neuronlens {

// A corpus tokenised into the sequences `record` runs.
struct TokenCorpus {
  std::vector<CorpusFile> files;
  std::vector<std::vector<int32_t>> chunks;  // [chunks][<= seq_len] token ids
  std::vector<int32_t> chunk_file;           // [chunks] index into files
  int64_t seq_len = 0;
  int64_t tokens() const;                    // every token of every chunk
  int64_t recorded_tokens() const;           // those record reads (offset >= 1)
};

// The longest chunk a record stores positions for (the atlas keeps 16-bit offsets).
constexpr int64_t kMaxRecordSeqLen = 32768;

struct CorpusOptions {
  int64_t seq_len = 256;   // tokens per chunk, the BOS included
  int64_t max_tokens = 0;  // stop once this many tokens are chunked; 0: all
};

// Reads corpus files: plain text (the whole file is one document), or JSON
// Lines where the name ends in .jsonl (one document per line, its "text"
// field). Bytes that are not UTF-8 are kept (the tokenizer encodes bytes).
// Throws Error (bad input: a file that cannot be read, a JSONL line that is
// not an object with a string "text", an empty corpus, seq_len < 2).
TokenCorpus tokenize_corpus(const std::vector<std::string>& paths, const Tokenizer& tokenizer,
                            const CorpusOptions& options);

struct RecordOptions {
  int64_t contexts = 20;            // kept per neuron and sign
  int64_t window = 16;              // tokens kept either side of a context, for display
  double density_threshold = 0.1;   // |activation| above this counts toward density
  // Seconds between checkpoints written to the atlas (the state a stopped
  // record resumes from), or 20 times as long as the last checkpoint took
  // if that is longer (so they cost at most ~5% of the run); 0: after
  // every chunk.
  double checkpoint_seconds = 60;
};

struct RecordProgress {
  int64_t chunks_done = 0;    // including chunks done by an earlier run
  int64_t chunks_total = 0;
  int64_t tokens_done = 0;    // in this run
  int64_t chunks_skipped = 0; // done by an earlier run, resumed from the atlas
};

// The atlas a record writes into: the one at `path` (with whatever map
// settings it has; it must be of this model, by sha256, else Error) or a new
// one with the default settings. Hashes the model file(s).
Atlas open_atlas_for_record(const Model& model, const std::string& path);

// Records `corpus` into `atlas` (an atlas of this model: Error otherwise).
// Resumes where an interrupted record of the same corpus and options
// stopped; a record of another corpus or other options is an Error (bad
// input). `on_progress` is called after every chunk (may be empty).
RecordProgress run_neuron_record(const Model& model, const TokenCorpus& corpus, const RecordOptions& options,
                                 Atlas& atlas, const std::function<void(const RecordProgress&)>& on_progress = {});

// A context as a reader sees it: the window's tokens, each with the
// neuron's activation on it (the firing token's exact, the others 8-bit).
struct ContextToken {
  int32_t id = 0;
  std::string text;      // the token's display text (invalid UTF-8 escaped)
  float activation = 0;
  bool fired = false;    // the context's own token
};
// Reads the context's chunk from the atlas. Throws Error (bad file) when the
// atlas's chunk does not hold the window.
std::vector<ContextToken> context_window(const Atlas& atlas, const NeuronContext& context);

}  // namespace neuronlens

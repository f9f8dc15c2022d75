// Writes an atlas the size of a full Llama-3.1-8B map (3 kinds x 32 layers x
// 14336 neurons = 1,376,256 neurons, top-20 over a 128,256-token vocabulary)
// filled with random decodings, to measure the server on an atlas that big
// without the weights (serve_load_bench --atlas OUT.db --no-model). Not a
// test: nothing here is checked, only timed.
//
//   make_synthetic_atlas OUT.db [--layers 32] [--d-ffn 14336] [--vocab 128256] [--top-k 20]
//
// Token ids are drawn with a skew toward low ids (u^3), so some tokens sit in
// the top-k of many neurons, as common tokens do in a real map. The first
// tokens of the vocabulary are English words (with and without a leading
// space, capitalised, plural), so concept searches find something.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/error.h"

namespace {

using namespace neuronlens;

const char* const kWords[] = {"dog", "cat", "house", "water", "music", "king", "red", "car", "city", "food",
                              "love", "war", "time", "money", "tree", "book", "the", "California", "sea", "sun"};

Vocabulary synthetic_vocabulary(int64_t size) {
  std::vector<std::string> raw;
  std::vector<std::string> texts;
  for (const char* w : kWords) {
    std::string capital = w;
    capital[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(capital[0])));
    for (const std::string& form : {std::string(w), capital, std::string(w) + "s", capital + "s"}) {
      texts.push_back(form);
      texts.push_back(" " + form);
    }
  }
  std::set<std::string> seen;
  for (const std::string& t : texts) {
    if (static_cast<int64_t>(raw.size()) < size && seen.insert(t).second) raw.push_back(byte_level_encode(t));
  }
  for (int64_t i = static_cast<int64_t>(raw.size()); i < size; ++i) raw.push_back(byte_level_encode("tok" + std::to_string(i)));
  return Vocabulary::from_tokens(VocabEncoding::ByteLevelBpe, std::move(raw));
}

std::vector<NeuronDecoding> random_layer(int64_t neurons, int64_t vocab, int top_k, std::mt19937_64& rng) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::vector<NeuronDecoding> out(static_cast<size_t>(neurons));
  for (NeuronDecoding& d : out) {
    std::set<int32_t> ids;
    while (static_cast<int>(ids.size()) < top_k) {
      const double u = unit(rng);
      ids.insert(static_cast<int32_t>(std::min<double>(static_cast<double>(vocab) - 1, std::floor(static_cast<double>(vocab) * u * u * u))));
    }
    d.top_ids.assign(ids.begin(), ids.end());
    std::shuffle(d.top_ids.begin(), d.top_ids.end(), rng);
    double logit = 10 + 15 * unit(rng);
    for (int i = 0; i < top_k; ++i) {
      d.top_logits.push_back(logit);
      logit -= 2 * unit(rng) * unit(rng);
    }
    // The rest of the vocabulary holds between 1% and 99% of the mass.
    double top_sum = 0;
    for (double z : d.top_logits) top_sum += std::exp(z - d.top_logits[0]);
    const double rest_share = 0.01 + 0.98 * unit(rng);
    d.logsumexp = d.top_logits[0] + std::log(top_sum / (1 - rest_share));
    d.topk_mass = 1 - rest_share;
    d.entropy = 0.3 + 11 * rest_share;
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_synthetic_atlas OUT.db [--layers N] [--d-ffn N] [--vocab N] [--top-k K]\n");
    return 2;
  }
  const std::string path = argv[1];
  int64_t layers = 32, d_ffn = 14336, vocab = 128256;
  int top_k = 20;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string arg = argv[i];
    const long long v = std::atoll(argv[i + 1]);
    if (arg == "--layers") layers = v;
    else if (arg == "--d-ffn") d_ffn = v;
    else if (arg == "--vocab") vocab = v;
    else if (arg == "--top-k") top_k = static_cast<int>(v);
    else {
      std::fprintf(stderr, "make_synthetic_atlas: unknown option %s\n", arg.c_str());
      return 2;
    }
  }
  try {
    AtlasSettings settings;
    settings.model_name = "Synthetic Llama-3.1-8B-shaped map";
    settings.model_path = "/nonexistent/synthetic-8b.gguf";
    settings.model_sha256 = std::string(64, '0');
    settings.architecture = "llama";
    settings.n_layers = layers;
    settings.d_model = 4096;
    settings.d_ffn = d_ffn;
    settings.vocab_size = vocab;
    settings.top_k = top_k;
    const Vocabulary vocabulary = synthetic_vocabulary(vocab);
    Atlas atlas = Atlas::create_or_resume(path, settings, vocabulary);
    std::mt19937_64 rng(1);
    const auto start = std::chrono::steady_clock::now();
    for (VectorKind kind : {VectorKind::Up, VectorKind::Gate, VectorKind::Down}) {
      for (int64_t layer = 0; layer < layers; ++layer) {
        if (atlas.layer_done(kind, layer)) continue;
        atlas.write_layer(kind, layer, random_layer(d_ffn, vocab, top_k, rng));
        std::fprintf(stderr, "\r%s layer %lld written (%.0f s)", std::string(vector_kind_name(kind)).c_str(),
                     static_cast<long long>(layer),
                     std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
    }
    std::fprintf(stderr, "\n");
  } catch (const Error& e) {
    std::fprintf(stderr, "make_synthetic_atlas: error: %s\n", e.what());
    return 2;
  }
  return 0;
}

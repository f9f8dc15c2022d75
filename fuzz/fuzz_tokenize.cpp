// The tokenizers' encode on arbitrary bytes (invalid UTF-8, lone
// surrogates, control tokens written in the text), for every real
// vocabulary the tests fetch (models/vocabs/*.gguf, scripts/fetch-vocabs.sh)
// and the default model's. The first byte picks the vocabulary, the second
// whether control tokens are parsed. Every id must be inside the vocabulary
// and decode back without error.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/tokenizer.h"
#include "neuronlens/vocab.h"

namespace {

std::vector<std::unique_ptr<neuronlens::Tokenizer>> load_tokenizers() {
  namespace fs = std::filesystem;
  const char* env = std::getenv("NEURONLENS_FUZZ_MODELS");
  const fs::path models = env ? env : NEURONLENS_FUZZ_MODELS_DIR;
  std::vector<fs::path> files;
  if (fs::exists(models / "vocabs")) {
    for (const auto& e : fs::directory_iterator(models / "vocabs")) {
      if (e.path().extension() == ".gguf") files.push_back(e.path());
    }
  }
  // The real models the tests fetch (scripts/fetch-model.sh,
  // fetch-multipart-model.sh); only their metadata is read.
  for (const char* name : {"SmolLM2-135M-Instruct.Q4_1.gguf", "gemma-3-270m-q4_k_m.gguf",
                           "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"}) {
    if (fs::exists(models / name)) files.push_back(models / name);
  }
  std::sort(files.begin(), files.end());
  std::vector<std::unique_ptr<neuronlens::Tokenizer>> out;
  for (const fs::path& f : files) {
    try {
      out.push_back(std::make_unique<neuronlens::Tokenizer>(
          neuronlens::Tokenizer::from_gguf(neuronlens::GgufFile::open(f.string()))));
    } catch (const neuronlens::Error& e) {
      std::fprintf(stderr, "fuzz_tokenize: skipping %s: %s\n", f.c_str(), e.what());
    }
  }
  if (out.empty()) {
    std::fprintf(stderr, "fuzz_tokenize: no vocabulary under %s (run scripts/fetch-vocabs.sh)\n", models.c_str());
#ifdef NEURONLENS_FUZZ_REPLAY
    std::exit(77);  // the replay test is skipped, as the vocabulary tests are
#else
    std::abort();
#endif
  }
  std::fprintf(stderr, "fuzz_tokenize: %zu vocabularies\n", out.size());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto tokenizers = load_tokenizers();
  if (size < 2) return 0;
  const neuronlens::Tokenizer& tok = *tokenizers[data[0] % tokenizers.size()];
  const bool parse_special = data[1] & 1;
  const std::string_view text(reinterpret_cast<const char*>(data + 2), size - 2);
  try {
    const std::vector<int32_t> ids = tok.encode(text, parse_special);
    const auto vocab_size = static_cast<int32_t>(tok.vocabulary().size());
    for (int32_t id : ids) {
      if (id < 0 || id >= vocab_size) {
        std::fprintf(stderr, "encode gave id %d outside the vocabulary of %d\n", id, vocab_size);
        std::abort();
      }
    }
    (void)tok.decode(ids);
  } catch (const neuronlens::Error&) {
  }
  return 0;
}

// The chat template: its detection from a template text (a GGUF's
// tokenizer.chat_template or a folder's tokenizer_config.json) and the
// rendering of a conversation. The input is split at NUL bytes:
//   byte 0        which vocabulary (ChatML, Gemma, Llama 3, Phi-3 tokens),
//                 and whether part 1 is a tokenizer_config.json (odd) or the
//                 template text itself (even);
//   part 1        the template source or tokenizer_config.json;
//   parts 2, 3... messages, each "role\x01content".
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "input_file.h"
#include "neuronlens/chat_template.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/tokenizer.h"

namespace {

std::vector<std::unique_ptr<neuronlens::Tokenizer>> load_vocabularies() {
  namespace fs = std::filesystem;
  const char* env = std::getenv("NEURONLENS_FUZZ_MODELS");
  const fs::path models = env ? env : NEURONLENS_FUZZ_MODELS_DIR;
  std::vector<std::unique_ptr<neuronlens::Tokenizer>> out;
  for (const fs::path& f : {models / "SmolLM2-135M-Instruct.Q4_1.gguf", models / "gemma-3-270m-q4_k_m.gguf",
                           models / "vocabs/ggml-vocab-llama-bpe.gguf", models / "vocabs/ggml-vocab-phi-3.gguf"}) {
    if (!fs::exists(f)) {
      std::fprintf(stderr,
                   "fuzz_chat_template: %s is missing (scripts/fetch-model.sh, fetch-multipart-model.sh, "
                   "fetch-vocabs.sh)\n",
                   f.c_str());
      std::abort();
    }
    out.push_back(std::make_unique<neuronlens::Tokenizer>(
        neuronlens::Tokenizer::from_gguf(neuronlens::GgufFile::open(f.string()))));
  }
  return out;
}

std::vector<std::string_view> split(std::string_view s, char at) {
  std::vector<std::string_view> parts;
  for (size_t from = 0;;) {
    const size_t end = s.find(at, from);
    parts.push_back(s.substr(from, end == std::string_view::npos ? std::string_view::npos : end - from));
    if (end == std::string_view::npos) return parts;
    from = end + 1;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto vocabularies = load_vocabularies();
  static const neuronlens::fuzz::InputFile config("tokenizer_config.json");
  if (size < 1) return 0;
  const neuronlens::Vocabulary& vocab = vocabularies[(data[0] >> 1) % vocabularies.size()]->vocabulary();
  const std::vector<std::string_view> parts =
      split(std::string_view(reinterpret_cast<const char*>(data + 1), size - 1), '\0');
  try {
    std::string source(parts[0]);
    if (data[0] & 1) {
      config.write(reinterpret_cast<const uint8_t*>(source.data()), source.size());
      source = neuronlens::read_chat_template_source(config.folder());
    }
    const std::optional<neuronlens::ChatTemplate> chat = neuronlens::ChatTemplate::detect(source, vocab);
    if (!chat) return 0;
    std::vector<neuronlens::ChatMessage> messages;
    for (size_t i = 1; i < parts.size(); ++i) {
      const size_t cut = parts[i].find('\x01');
      messages.push_back({std::string(parts[i].substr(0, cut)),
                          cut == std::string_view::npos ? std::string() : std::string(parts[i].substr(cut + 1))});
    }
    (void)chat->render(messages, true);
    (void)chat->render(messages, false);
  } catch (const neuronlens::Error&) {
  }
  return 0;
}

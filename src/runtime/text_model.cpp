// The model on text: prompts and the generation loop
// (include/neuronlens/text_model.h).
#include "neuronlens/text_model.h"

#include <algorithm>
#include <filesystem>
#include <optional>

#include "neuronlens/error.h"
#include "neuronlens/gguf.h"

namespace neuronlens {

TextModel TextModel::load(const std::string& path) { return with_model(Model::load(path)); }

TextModel TextModel::with_model(Model model) {
  std::optional<Tokenizer> tokenizer;
  std::string chat_source;
  if (const GgufFile* file = model.gguf()) {
    tokenizer.emplace(Tokenizer::from_gguf(*file, model.shared_vocab()));
    chat_source = read_chat_template_source(*file);
  } else {
    // A Hugging Face folder (model.path()): the loader built the vocabulary
    // from its tokenizer.json; the chat template is in tokenizer_config.json.
    const std::filesystem::path folder_tokenizer = std::filesystem::path(model.path()) / "tokenizer.json";
    tokenizer.emplace(Tokenizer::from_tokenizer_json(folder_tokenizer.string(), model.shared_vocab()));
    chat_source = read_chat_template_source(model.path());
  }
  auto chat = ChatTemplate::detect(chat_source, tokenizer->vocabulary());
  return TextModel{std::move(model), std::move(*tokenizer), std::move(chat)};
}

TextModel TextModel::with_model(Model model, const std::string& path) {
  if (path == model.path()) return with_model(std::move(model));
  const std::filesystem::path folder_tokenizer = std::filesystem::path(path) / "tokenizer.json";
  Tokenizer tokenizer = std::filesystem::is_directory(path) ? Tokenizer::from_tokenizer_json(folder_tokenizer.string())
                                                            : Tokenizer::from_gguf(GgufFile::open(path));
  auto chat = ChatTemplate::detect(read_chat_template_source(path), tokenizer.vocabulary());
  return TextModel{std::move(model), std::move(tokenizer), std::move(chat)};
}

std::vector<int32_t> TextModel::prompt_tokens(const std::string& text, bool use_chat) const {
  std::vector<int32_t> ids;
  if (use_chat) {
    if (!chat) {
      throw bad_input("chat: this model has no chat template neuronlens knows (supported: " +
                      std::string(supported_chat_formats()) + ")");
    }
    ids = tokenizer.encode(chat->render({{"user", text}}), true);
  } else {
    if (tokenizer.adds_bos() && tokenizer.bos_id()) ids.push_back(*tokenizer.bos_id());
    const auto body = tokenizer.encode(text, false);
    ids.insert(ids.end(), body.begin(), body.end());
  }
  if (ids.empty()) throw bad_input("the prompt is empty");
  const int64_t context = model.config().context_length;
  if (static_cast<int64_t>(ids.size()) >= context) {
    throw bad_input("the prompt is " + std::to_string(ids.size()) + " tokens, the model's context is " +
                    std::to_string(context) + " tokens");
  }
  return ids;
}

std::vector<int32_t> TextModel::stop_tokens() const {
  if (chat) return chat->stop_tokens();
  if (tokenizer.eos_id()) return {*tokenizer.eos_id()};
  return {};
}

size_t complete_utf8_prefix(std::string_view text) {
  const size_t n = text.size();
  for (size_t back = 1; back <= std::min<size_t>(3, n); ++back) {
    const auto c = static_cast<unsigned char>(text[n - back]);
    if ((c & 0xC0) == 0x80) continue;  // continuation byte: look further back
    const size_t need = c >= 0xF0 ? 4 : c >= 0xE0 ? 3 : c >= 0xC0 ? 2 : 1;
    return need > back ? n - back : n;
  }
  return n;
}

std::string_view generation_stop_name(GenerationStop stop) {
  switch (stop) {
    case GenerationStop::Length: return "length";
    case GenerationStop::EndOfTurn: return "eos";
    case GenerationStop::Context: return "context";
    case GenerationStop::Cancelled: return "cancelled";
  }
  return "?";
}

GenerationResult generate_text(Session& session, const TextModel& text_model, const std::vector<int32_t>& prompt,
                               int64_t max_tokens, Sampler& sampler, const OnGeneratedToken& on_token) {
  const int64_t context = text_model.model.config().context_length;
  const std::vector<int32_t> stops = text_model.stop_tokens();
  const Vocabulary& vocab = text_model.tokenizer.vocabulary();
  GenerationResult result;
  std::string pending;  // bytes not yet handed out (an unfinished UTF-8 sequence)
  std::vector<float> logits = session.forward(prompt, LogitsFor::LastToken);
  while (result.tokens < max_tokens) {
    const int32_t next = sampler.sample(logits);
    if (std::find(stops.begin(), stops.end(), next) != stops.end()) {
      result.stop = GenerationStop::EndOfTurn;
      break;
    }
    ++result.tokens;
    pending += vocab.token(next).bytes;
    const size_t ready = complete_utf8_prefix(pending);
    const bool go_on = on_token(next, std::string_view(pending).substr(0, ready));
    pending.erase(0, ready);
    if (!go_on) {
      result.stop = GenerationStop::Cancelled;
      break;
    }
    if (result.tokens == max_tokens) break;
    // The generated text is capped by the context: stop when it is full.
    if (session.position() >= context) {
      result.stop = GenerationStop::Context;
      break;
    }
    logits = session.forward({next}, LogitsFor::LastToken);
  }
  result.unfinished = std::move(pending);
  return result;
}

}  // namespace neuronlens

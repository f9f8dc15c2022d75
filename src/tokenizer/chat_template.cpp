// Chat formats: detection from the template text and rendering; see
// include/neuronlens/chat_template.h.
#include "neuronlens/chat_template.h"

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "neuronlens/error.h"
#include "neuronlens/gguf.h"

namespace neuronlens {
namespace {

constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";
constexpr std::string_view kBeginOfText = "<|begin_of_text|>";
constexpr std::string_view kStartHeader = "<|start_header_id|>";
constexpr std::string_view kEndHeader = "<|end_header_id|>";
constexpr std::string_view kEotId = "<|eot_id|>";

std::optional<int32_t> token_id(const Vocabulary& vocab, std::string_view raw) {
  const auto id = vocab.find_raw(raw);
  if (!id) return std::nullopt;
  return static_cast<int32_t>(*id);
}

// The text between "<|im_start|>system\n" and "<|im_end|>" that a ChatML
// template writes literally, or "" if it writes none. The template spells the
// newline either as a real newline or as the Jinja escape "\n".
std::string chatml_default_system(std::string_view source) {
  for (std::string_view newline : {std::string_view("\n"), std::string_view("\\n")}) {
    const std::string opener = std::string(kImStart) + "system" + std::string(newline);
    for (size_t start = source.find(opener); start != std::string_view::npos;
         start = source.find(opener, start + 1)) {
      const size_t text_start = start + opener.size();
      const size_t end = source.find(kImEnd, text_start);
      if (end == std::string_view::npos) break;
      const std::string_view text = source.substr(text_start, end - text_start);
      // A system block built from the message ("...system\n' + message['content']")
      // is not a literal default.
      if (text.find('\'') != std::string_view::npos || text.find('{') != std::string_view::npos) continue;
      return std::string(text);
    }
  }
  return "";
}

std::string_view strip(std::string_view s) {
  const auto is_space = [](char c) { return c == ' ' || c == '\n' || c == '\t' || c == '\r'; };
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

}  // namespace

std::string_view chat_format_name(ChatFormat format) {
  return format == ChatFormat::ChatML ? "chatml" : "llama3";
}

std::optional<ChatTemplate> ChatTemplate::detect(std::string_view template_source, const Vocabulary& vocab) {
  std::optional<ChatFormat> format;
  if (template_source.find(kImStart) != std::string_view::npos) format = ChatFormat::ChatML;
  else if (template_source.find(kStartHeader) != std::string_view::npos) format = ChatFormat::Llama3;
  // No template text: go by the vocabulary's special tokens.
  else if (template_source.empty() && token_id(vocab, kImStart) && token_id(vocab, kImEnd))
    format = ChatFormat::ChatML;
  else if (template_source.empty() && token_id(vocab, kStartHeader) && token_id(vocab, kEotId))
    format = ChatFormat::Llama3;
  if (!format) return std::nullopt;

  ChatTemplate t;
  t.format_ = *format;
  const auto end_of_turn = token_id(vocab, *format == ChatFormat::ChatML ? kImEnd : kEotId);
  if (!end_of_turn) return std::nullopt;
  t.stop_tokens_.push_back(*end_of_turn);
  if (vocab.eos_id() && static_cast<int32_t>(*vocab.eos_id()) != *end_of_turn) {
    t.stop_tokens_.push_back(static_cast<int32_t>(*vocab.eos_id()));
  }
  if (*format == ChatFormat::ChatML) t.default_system_ = chatml_default_system(template_source);
  return t;
}

ChatTemplate ChatTemplate::require(std::string_view template_source, const Vocabulary& vocab) {
  auto t = detect(template_source, vocab);
  if (!t) {
    throw Error("this model has no chat template neuronlens knows (supported: ChatML, Llama 3)");
  }
  return *t;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  std::string out;
  if (format_ == ChatFormat::ChatML) {
    if (!default_system_.empty() && !messages.empty() && messages[0].role != "system") {
      out += std::string(kImStart) + "system\n" + default_system_ + std::string(kImEnd) + "\n";
    }
    for (const ChatMessage& m : messages) {
      out += std::string(kImStart) + m.role + "\n" + m.content + std::string(kImEnd) + "\n";
    }
    if (add_generation_prompt) out += std::string(kImStart) + "assistant\n";
  } else {
    out += kBeginOfText;
    for (const ChatMessage& m : messages) {
      out += std::string(kStartHeader) + m.role + std::string(kEndHeader) + "\n\n" + std::string(strip(m.content)) +
             std::string(kEotId);
    }
    if (add_generation_prompt) out += std::string(kStartHeader) + "assistant" + std::string(kEndHeader) + "\n\n";
  }
  return out;
}

std::string read_chat_template_source(const std::string& model_path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(model_path)) {
    const fs::path config = fs::path(model_path) / "tokenizer_config.json";
    if (!fs::exists(config)) return "";
    std::ifstream in(config);
    if (!in) throw Error(config.string() + ": cannot open");
    nlohmann::json j;
    try {
      j = nlohmann::json::parse(in);
    } catch (const nlohmann::json::exception& e) {
      throw Error(config.string() + ": not valid JSON (" + e.what() + ")");
    }
    const auto it = j.find("chat_template");
    if (it == j.end() || !it->is_string()) return "";  // absent, or a list of named templates
    return it->get<std::string>();
  }
  const GgufFile file = GgufFile::open(model_path);
  return file.get_string_or("tokenizer.chat_template", "");
}

}  // namespace neuronlens

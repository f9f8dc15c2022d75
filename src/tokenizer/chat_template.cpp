// Chat formats: detection from the template text and rendering; see
// include/neuronlens/chat_template.h.
#include "neuronlens/chat_template.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <nlohmann/json.hpp>

#include "io/json_input.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "tokenizer/utf8.h"

namespace neuronlens {
namespace {

constexpr std::string_view kImStart = "<|im_start|>";
constexpr std::string_view kImEnd = "<|im_end|>";
constexpr std::string_view kBeginOfText = "<|begin_of_text|>";
constexpr std::string_view kStartHeader = "<|start_header_id|>";
constexpr std::string_view kEndHeader = "<|end_header_id|>";
constexpr std::string_view kEotId = "<|eot_id|>";
constexpr std::string_view kStartOfTurn = "<start_of_turn>";
constexpr std::string_view kEndOfTurn = "<end_of_turn>";
constexpr std::string_view kPhiUser = "<|user|>";
constexpr std::string_view kPhiSystem = "<|system|>";
constexpr std::string_view kPhiAssistant = "<|assistant|>";
constexpr std::string_view kPhiEnd = "<|end|>";
constexpr std::string_view kThinkOpen = "<think>";
constexpr std::string_view kThinkClose = "</think>";

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

// Whitespace as Python's str.strip() sees it (Jinja's trim filter is that):
// ASCII \t..\r, \x1c..\x1f and space, and Unicode's spaces and line separators.
bool is_python_space(char32_t c) {
  return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F || c == 0x205F || c == 0x3000;
}

std::string_view strip(std::string_view s) {
  while (!s.empty()) {
    const auto c = utf8::decode_at(s, 0);
    if (!c || !is_python_space(c->code_point)) break;
    s.remove_prefix(c->length);
  }
  while (!s.empty()) {
    size_t length = 0;  // of a whitespace character that ends s
    for (size_t n = 1; n <= std::min<size_t>(3, s.size()) && length == 0; ++n) {
      const auto c = utf8::decode_at(s, s.size() - n);
      if (c && c->length == n && is_python_space(c->code_point)) length = n;
    }
    if (length == 0) break;
    s.remove_suffix(length);
  }
  return s;
}

// Python's str.lstrip / rstrip with one character, as the Qwen3 template
// calls them with '\n'.
std::string_view lstrip_char(std::string_view s, char c) {
  while (!s.empty() && s.front() == c) s.remove_prefix(1);
  return s;
}
std::string_view rstrip_char(std::string_view s, char c) {
  while (!s.empty() && s.back() == c) s.remove_suffix(1);
  return s;
}

// The text of the vocabulary's token `id`, or `fallback` when it has none.
std::string special_text(const Vocabulary& vocab, std::optional<int64_t> id, std::string_view fallback) {
  return id ? vocab.token(*id).raw : std::string(fallback);
}

}  // namespace

std::string_view chat_format_name(ChatFormat format) {
  switch (format) {
    case ChatFormat::ChatML: return "chatml";
    case ChatFormat::Llama3: return "llama3";
    case ChatFormat::Gemma: return "gemma";
    case ChatFormat::Phi3: return "phi3";
  }
  return "?";
}

std::string_view supported_chat_formats() { return "ChatML, Llama 3, Gemma, Phi-3"; }

std::optional<ChatTemplate> ChatTemplate::detect(std::string_view template_source, const Vocabulary& vocab) {
  const auto mentions = [&](std::string_view marker) { return template_source.find(marker) != std::string_view::npos; };
  const auto has_tokens = [&](std::initializer_list<std::string_view> raws) {
    return std::all_of(raws.begin(), raws.end(), [&](std::string_view raw) { return token_id(vocab, raw).has_value(); });
  };
  std::optional<ChatFormat> format;
  if (mentions(kImStart)) format = ChatFormat::ChatML;
  else if (mentions(kStartHeader)) format = ChatFormat::Llama3;
  else if (mentions(kStartOfTurn)) format = ChatFormat::Gemma;
  else if (mentions(kPhiUser) && mentions(kPhiEnd)) format = ChatFormat::Phi3;
  // No template text (Gemma's GGUF files have none): go by the vocabulary's
  // special tokens.
  else if (template_source.empty() && has_tokens({kImStart, kImEnd})) format = ChatFormat::ChatML;
  else if (template_source.empty() && has_tokens({kStartHeader, kEotId})) format = ChatFormat::Llama3;
  else if (template_source.empty() && has_tokens({kStartOfTurn, kEndOfTurn})) format = ChatFormat::Gemma;
  else if (template_source.empty() && has_tokens({kPhiUser, kPhiAssistant, kPhiEnd})) format = ChatFormat::Phi3;
  if (!format) return std::nullopt;

  ChatTemplate t;
  t.format_ = *format;
  std::string_view end_of_turn_text;
  switch (*format) {
    case ChatFormat::ChatML: end_of_turn_text = kImEnd; break;
    case ChatFormat::Llama3: end_of_turn_text = kEotId; break;
    case ChatFormat::Gemma: end_of_turn_text = kEndOfTurn; break;
    case ChatFormat::Phi3: end_of_turn_text = kPhiEnd; break;
  }
  const auto end_of_turn = token_id(vocab, end_of_turn_text);
  if (!end_of_turn) return std::nullopt;
  t.stop_tokens_.push_back(*end_of_turn);
  if (vocab.eos_id() && static_cast<int32_t>(*vocab.eos_id()) != *end_of_turn) {
    t.stop_tokens_.push_back(static_cast<int32_t>(*vocab.eos_id()));
  }
  switch (*format) {
    case ChatFormat::ChatML:
      t.default_system_ = chatml_default_system(template_source);
      t.think_blocks_ = mentions("reasoning_content") && mentions(kThinkClose);
      break;
    case ChatFormat::Llama3: break;
    case ChatFormat::Gemma: t.bos_text_ = special_text(vocab, vocab.bos_id(), "<bos>"); break;
    case ChatFormat::Phi3:
      t.eos_text_ = special_text(vocab, vocab.eos_id(), "<|endoftext|>");
      // With no template text (from the vocabulary alone), the current one.
      t.phi3_first_template_ = !template_source.empty() && !mentions(kPhiSystem);
      // BOS as the template writes it: Phi-3-mini's first one does, a copy
      // without "{{ bos_token }}" does not.
      if (t.phi3_first_template_ && mentions("bos_token")) t.bos_text_ = special_text(vocab, vocab.bos_id(), "<s>");
      t.skip_empty_system_ = mentions("message['role'] == 'system' and message['content']");
      break;
  }
  return t;
}

ChatTemplate ChatTemplate::require(std::string_view template_source, const Vocabulary& vocab) {
  auto t = detect(template_source, vocab);
  if (!t) {
    throw bad_input(
        "this model has no chat template neuronlens knows (supported: " + std::string(supported_chat_formats()) + ")");
  }
  return *t;
}

std::string ChatTemplate::render(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  switch (format_) {
    case ChatFormat::ChatML: return render_chatml(messages, add_generation_prompt);
    case ChatFormat::Gemma: return render_gemma(messages, add_generation_prompt);
    case ChatFormat::Phi3: return render_phi3(messages, add_generation_prompt);
    case ChatFormat::Llama3: break;
  }
  std::string out(kBeginOfText);
  for (const ChatMessage& m : messages) {
    out += std::string(kStartHeader) + m.role + std::string(kEndHeader) + "\n\n" + std::string(strip(m.content)) +
           std::string(kEotId);
  }
  if (add_generation_prompt) out += std::string(kStartHeader) + "assistant" + std::string(kEndHeader) + "\n\n";
  return out;
}

std::string ChatTemplate::render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  std::string out;
  if (!default_system_.empty() && !messages.empty() && messages[0].role != "system") {
    out += std::string(kImStart) + "system\n" + default_system_ + std::string(kImEnd) + "\n";
  }
  // Qwen3: the last user message (a tool response written as one does not count).
  size_t last_query = messages.empty() ? 0 : messages.size() - 1;
  for (size_t i = messages.size(); i-- > 0;) {
    const std::string& content = messages[i].content;
    if (messages[i].role == "user" && !(content.starts_with("<tool_response>") && content.ends_with("</tool_response>"))) {
      last_query = i;
      break;
    }
  }
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if (!think_blocks_ || m.role != "assistant") {
      out += std::string(kImStart) + m.role + "\n" + m.content + std::string(kImEnd) + "\n";
      continue;
    }
    // Qwen3's assistant turn: "<think>R</think>C" split into reasoning R and content C.
    std::string_view content = m.content, reasoning;
    if (const size_t first_close = content.find(kThinkClose); first_close != std::string_view::npos) {
      reasoning = rstrip_char(content.substr(0, first_close), '\n');
      if (const size_t open = reasoning.rfind(kThinkOpen); open != std::string_view::npos) {
        reasoning.remove_prefix(open + kThinkOpen.size());
      }
      reasoning = lstrip_char(reasoning, '\n');
      content = lstrip_char(content.substr(content.rfind(kThinkClose) + kThinkClose.size()), '\n');
    }
    out += std::string(kImStart) + "assistant\n";
    if (i > last_query && (i + 1 == messages.size() || !reasoning.empty())) {
      out += std::string(kThinkOpen) + "\n" + std::string(lstrip_char(rstrip_char(reasoning, '\n'), '\n')) + "\n" +
             std::string(kThinkClose) + "\n\n";
      content = lstrip_char(content, '\n');
    }
    out += std::string(content) + std::string(kImEnd) + "\n";
  }
  if (add_generation_prompt) out += std::string(kImStart) + "assistant\n";
  return out;
}

std::string ChatTemplate::render_gemma(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  std::string out = bos_text_;
  size_t first = 0;
  std::string first_user_prefix;
  if (!messages.empty() && messages[0].role == "system") {
    first_user_prefix = messages[0].content + "\n\n";
    first = 1;
  }
  for (size_t i = first; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    if ((m.role == "user") != ((i - first) % 2 == 0)) {
      throw bad_input("chat (Gemma): conversation roles must alternate user/assistant/user/assistant/...; message " +
                      std::to_string(i + 1) + " is '" + m.role + "'");
    }
    out += std::string(kStartOfTurn) + (m.role == "assistant" ? "model" : m.role) + "\n";
    if (i == first) out += first_user_prefix;
    out += std::string(strip(m.content)) + std::string(kEndOfTurn) + "\n";
  }
  if (add_generation_prompt) out += std::string(kStartOfTurn) + "model\n";
  return out;
}

std::string ChatTemplate::render_phi3(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  std::string out;
  if (phi3_first_template_) {
    out += bos_text_;
    for (const ChatMessage& m : messages) {
      if (m.role == "user") {
        out += std::string(kPhiUser) + "\n" + m.content + std::string(kPhiEnd) + "\n" + std::string(kPhiAssistant) + "\n";
      } else if (m.role == "assistant") {
        out += m.content + std::string(kPhiEnd) + "\n";
      }
    }
    return out;
  }
  for (const ChatMessage& m : messages) {
    if (m.role != "system" && m.role != "user" && m.role != "assistant") continue;
    if (m.role == "system" && skip_empty_system_ && m.content.empty()) continue;
    out += "<|" + m.role + "|>\n" + m.content + std::string(kPhiEnd) + "\n";
  }
  out += add_generation_prompt ? std::string(kPhiAssistant) + "\n" : eos_text_;
  return out;
}

std::string read_chat_template_source(const std::string& model_path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(model_path)) {
    const fs::path config = fs::path(model_path) / "tokenizer_config.json";
    if (!fs::exists(config)) return "";
    const nlohmann::json j = read_json_file(config.string());
    const auto it = j.find("chat_template");
    if (it == j.end() || !it->is_string()) return "";  // absent, or a list of named templates
    return it->get<std::string>();
  }
  return read_chat_template_source(GgufFile::open(model_path));
}

std::string read_chat_template_source(const GgufFile& file) {
  return file.get_string_or("tokenizer.chat_template", "");
}

}  // namespace neuronlens

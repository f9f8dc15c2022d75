// Chat prompts: the conversation formats neuronlens can render, chosen from a
// model's metadata (the Jinja template in tokenizer.chat_template, or
// tokenizer_config.json's chat_template), without a Jinja interpreter.
//
//  - ChatML (SmolLM2, Qwen2):
//      [<|im_start|>system\nDEFAULT<|im_end|>\n]    only if the template has
//                                                    a default system prompt
//                                                    and messages[0] is not system
//      <|im_start|>ROLE\nCONTENT<|im_end|>\n        per message
//      <|im_start|>assistant\n                       generation prompt
//    A default system prompt is the literal
//    "<|im_start|>system\n...<|im_end|>" the template writes when the first
//    message is not a system one (SmolLM2: "You are a helpful AI assistant
//    named SmolLM, trained by Hugging Face"; Qwen2: "You are a helpful assistant.").
//  - Llama 3:
//      <|begin_of_text|>
//      <|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>   per message,
//                                                   content stripped of outer whitespace
//      <|start_header_id|>assistant<|end_header_id|>\n\n
//    (Llama 3.1's extra "Cutting Knowledge Date" system block is not added.)
//  - Qwen3 is ChatML whose template adds <think> blocks (it reads
//    "reasoning_content"): an assistant message's "<think>R</think>C" loses R before
//    the last user message; after it, the last assistant message (and any
//    other with reasoning) is written "<think>\nR\n</think>\n\nC". Thinking
//    stays on (no empty think block after the generation prompt). Other
//    roles ("tool") are written as plain ChatML turns, not as the template's
//    <tool_response> blocks; tool calls are not rendered.
//  - Gemma 3 (Gemma 1 and 2 write the same turns but refuse a system message):
//      <bos>
//      <start_of_turn>ROLE\n[SYSTEM\n\n]CONTENT<end_of_turn>\n   per message; ROLE 'model' for
//                                                   'assistant', content stripped; a first
//                                                   system message is not a turn but goes,
//                                                   as written, before the first turn's content
//      <start_of_turn>model\n
//    Roles after the system message must alternate user, other, user, ...
//    (render throws Error otherwise, as the template raises).
//  - Phi-3 (Phi-3 after its mid-2024 update, Phi-3.5):
//      <|ROLE|>\nCONTENT<|end|>\n                   per system/user/assistant message
//                                                   (Phi-3.5 skips an empty system message)
//      <|assistant|>\n                               generation prompt, else EOS text
//    The first Phi-3 template (early GGUF files; no "<|system|>" in it) is
//    rendered as it is written: BOS (if it writes bos_token), then
//    "<|user|>\nCONTENT<|end|>\n<|assistant|>\n"
//    per user message and "CONTENT<|end|>\n" per assistant message; system
//    messages are dropped and there is no separate generation prompt.
// BOS/EOS text (Gemma, Phi-3) is the vocabulary's BOS/EOS token, or the
// family's usual one ("<bos>", "<s>", "<|endoftext|>") when it names none.
//
// Detection: markers in the template text ("<|im_start|>", "<|start_header_id|>",
// "<start_of_turn>", "<|user|>" with "<|end|>"), or, with no template (Gemma's
// GGUF files carry none), the presence of the format's tokens in the
// vocabulary. The rendered text holds the special tokens written out: encode
// it with parse_special = true and without adding a BOS.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/vocab.h"

namespace neuronlens {

class GgufFile;

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatFormat { ChatML, Llama3, Gemma, Phi3 };
std::string_view chat_format_name(ChatFormat format);  // "chatml", "llama3", "gemma", "phi3"
// The formats for people, for messages: "ChatML, Llama 3, Gemma, Phi-3".
std::string_view supported_chat_formats();

class ChatTemplate {
 public:
  // The format `template_source` (may be empty) and `vocab` call for, or
  // nullopt when neither names one neuronlens knows. Also nullopt when the
  // vocabulary lacks the format's special tokens.
  static std::optional<ChatTemplate> detect(std::string_view template_source, const Vocabulary& vocab);
  // Same; throws Error "this model has no chat template neuronlens knows".
  static ChatTemplate require(std::string_view template_source, const Vocabulary& vocab);

  ChatFormat format() const { return format_; }
  // "" when the template has none.
  const std::string& default_system_prompt() const { return default_system_; }

  // The prompt text for `messages`, with the assistant's header at the end
  // when `add_generation_prompt`. Throws Error where the template would
  // refuse the conversation (Gemma: roles that do not alternate).
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;
  // Tokens that end the assistant's turn: the end-of-turn token
  // (<|im_end|> / <|eot_id|> / <end_of_turn> / <|end|>) and the vocabulary's
  // EOS, without repeats.
  const std::vector<int32_t>& stop_tokens() const { return stop_tokens_; }

 private:
  ChatFormat format_ = ChatFormat::ChatML;
  std::string default_system_;
  std::vector<int32_t> stop_tokens_;
  std::string bos_text_, eos_text_;  // Gemma, Phi-3
  bool think_blocks_ = false;        // ChatML: Qwen3's <think> handling
  bool phi3_first_template_ = false;  // Phi-3: the first template (no system turns)
  bool skip_empty_system_ = false;   // Phi-3.5

  std::string render_chatml(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  std::string render_gemma(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
  std::string render_phi3(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const;
};

// The chat template text stored with the model at `model_path`: the GGUF key
// tokenizer.chat_template, or "chat_template" of tokenizer_config.json in a
// Hugging Face folder; "" when there is none. Throws Error on an unreadable file.
std::string read_chat_template_source(const std::string& model_path);
// The same from a GGUF file already parsed: its tokenizer.chat_template, or "".
std::string read_chat_template_source(const GgufFile& file);

}  // namespace neuronlens

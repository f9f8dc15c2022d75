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
//
// Detection: markers in the template text ("<|im_start|>", "<|start_header_id|>"),
// or, with no template, the presence of those tokens in the vocabulary.
// The rendered text holds the special tokens written out: encode it with
// parse_special = true and without adding a BOS.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/vocab.h"

namespace neuronlens {

struct ChatMessage {
  std::string role;  // "system", "user", "assistant"
  std::string content;
};

enum class ChatFormat { ChatML, Llama3 };
std::string_view chat_format_name(ChatFormat format);  // "chatml", "llama3"

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
  // when `add_generation_prompt`.
  std::string render(const std::vector<ChatMessage>& messages, bool add_generation_prompt = true) const;
  // Tokens that end the assistant's turn: the end-of-turn token
  // (<|im_end|> / <|eot_id|>) and the vocabulary's EOS, without repeats.
  const std::vector<int32_t>& stop_tokens() const { return stop_tokens_; }

 private:
  ChatFormat format_ = ChatFormat::ChatML;
  std::string default_system_;
  std::vector<int32_t> stop_tokens_;
};

// The chat template text stored with the model at `model_path`: the GGUF key
// tokenizer.chat_template, or "chat_template" of tokenizer_config.json in a
// Hugging Face folder; "" when there is none. Throws Error on an unreadable file.
std::string read_chat_template_source(const std::string& model_path);

}  // namespace neuronlens

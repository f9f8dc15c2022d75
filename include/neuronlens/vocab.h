// A model's vocabulary: token id -> the token's bytes, its type, and a display
// string a person can read.
//
// Two encodings of token strings exist in the wild:
//  - byte-level BPE (GPT-2, Llama 3, SmolLM, Qwen2; GGUF tokenizer.ggml.model
//    "gpt2"): each byte is stored as a printable code point (GPT-2's
//    bytes_to_unicode table: 'Ġ' is a space, 'Ċ' a newline);
//  - SentencePiece (Llama 2, Mistral; GGUF "llama"): '▁' (U+2581) stands for a
//    space and byte-fallback tokens are spelled "<0xNN>".
// Both are undone to raw bytes; the display text is those bytes as UTF-8 with
// any invalid sequence shown as \xNN escapes, so it is always valid UTF-8.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace neuronlens {

class GgufFile;

enum class VocabEncoding { ByteLevelBpe, SentencePiece };

// Token types as GGUF numbers them (llama_token_type).
enum class TokenType : int32_t {
  Undefined = 0,
  Normal = 1,
  Unknown = 2,
  Control = 3,
  UserDefined = 4,
  Unused = 5,
  Byte = 6,
};
std::string_view token_type_name(TokenType type);

struct Token {
  std::string raw;      // as stored in the model file (encoded form)
  std::string bytes;    // decoded bytes the token stands for (may be invalid UTF-8)
  std::string display;  // valid UTF-8 for people: bytes with invalid sequences escaped;
                        // control characters ('\n', '\t') kept for the front end to draw
  TokenType type = TokenType::Normal;
};

class Vocabulary {
 public:
  // From GGUF metadata: tokenizer.ggml.model, .tokens, .token_type (optional),
  // .bos_token_id / .eos_token_id (optional). Throws Error naming the file.
  static Vocabulary from_gguf(const GgufFile& file);
  // From a Hugging Face tokenizer.json (model.vocab, added_tokens, decoder).
  static Vocabulary from_tokenizer_json(const std::string& path);
  // From explicit raw token strings (tests, tools).
  static Vocabulary from_tokens(VocabEncoding encoding, std::vector<std::string> raw_tokens,
                                std::vector<TokenType> types = {});

  VocabEncoding encoding() const { return encoding_; }
  int64_t size() const { return static_cast<int64_t>(tokens_.size()); }
  const Token& token(int64_t id) const;  // throws Error on an out-of-range id
  const std::vector<Token>& tokens() const { return tokens_; }
  std::optional<int64_t> bos_id() const { return bos_id_; }
  std::optional<int64_t> eos_id() const { return eos_id_; }
  // Id of the token whose raw (encoded) string is `raw`, if any.
  std::optional<int64_t> find_raw(std::string_view raw) const;

 private:
  VocabEncoding encoding_ = VocabEncoding::ByteLevelBpe;
  std::vector<Token> tokens_;
  std::optional<int64_t> bos_id_, eos_id_;
  std::vector<int64_t> sorted_by_raw_;  // token ids sorted by raw string, for find_raw
  void finish();  // fills bytes/display and the lookup index
};

// A byte-level BPE token's raw (encoded) form of `bytes`: GPT-2 code points.
std::string byte_level_encode(std::string_view bytes);

}  // namespace neuronlens

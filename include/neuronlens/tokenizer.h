// Text <-> token ids for the two tokenizer families the vocabulary knows:
//
//  - byte-level BPE (GGUF tokenizer.ggml.model "gpt2"; GPT-2, SmolLM, Llama 3,
//    Qwen2): the text is split by the family's pre-tokenizer regexes
//    (tokenizer.ggml.pre, as llama.cpp defines them), each piece's bytes are
//    spelled with GPT-2's byte-to-code-point table and merged by merge rank
//    (tokenizer.ggml.merges, "left right", lowest line first). Qwen2 (and a
//    tokenizer.json with an NFC normalizer) first puts the text in Unicode
//    NFC, as Hugging Face does (llama.cpp does not);
//  - SentencePiece BPE (GGUF "llama"; Llama 2, Mistral): spaces become '▁',
//    an optional '▁' is put in front (tokenizer.ggml.add_space_prefix), and
//    adjacent pieces are merged while their concatenation is a token, highest
//    tokenizer.ggml.scores first; characters with no token fall back to
//    "<0xNN>" byte tokens.
//
// A Hugging Face tokenizer.json (model.type "BPE") is read the same way: its
// pre_tokenizer (Split regexes, Digits, ByteLevel) becomes the regex list, its
// merges the ranks; a Metaspace/Replace('▁') file is SentencePiece-style BPE
// merged by rank with byte fallback.
//
// Invalid UTF-8 in the text is not an error: the regexes never match an
// invalid byte, so it becomes a piece of its own and is encoded as the byte
// token that stands for it (byte-level) or as "<0xNN>" (SentencePiece). So
// decode(encode(text)) == text for every byte string the vocabulary can
// spell. A byte with no token (SmolLM2 has none for 0xFF, 0xC0, 0x13, ...)
// is dropped by byte-level BPE, as llama.cpp and HF (without unk_token) do,
// and becomes <unk> in SentencePiece without byte fallback. A literal '▁' in
// SentencePiece text decodes as a space, as in SentencePiece itself.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "neuronlens/vocab.h"

namespace neuronlens {

class GgufFile;

class Tokenizer {
 public:
  // From GGUF metadata (tokenizer.ggml.*). Throws Error naming the file and key.
  static Tokenizer from_gguf(const GgufFile& file);
  // The same around `vocab`, the vocabulary already built from `file`
  // (Model::shared_vocab()): the tokenizer reads only its own keys (merges,
  // pre-tokenizer, scores, flags) and shares the vocabulary instead of
  // building another. `vocab` must not be null.
  static Tokenizer from_gguf(const GgufFile& file, std::shared_ptr<const Vocabulary> vocab);
  // From a Hugging Face tokenizer.json. Throws Error naming the file.
  static Tokenizer from_tokenizer_json(const std::string& path);
  // The same around `vocab`, the vocabulary already built from the file at
  // `path`: only the merges, pre-tokenizer and flags are read from it.
  static Tokenizer from_tokenizer_json(const std::string& path, std::shared_ptr<const Vocabulary> vocab);

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Token ids for `text`. With parse_special, control tokens written
  // literally in the text ("<|im_start|>") become their ids; user-defined
  // tokens always do (llama.cpp's rule). The longest such token wins where
  // several start at the same place. No BOS is added: see adds_bos().
  std::vector<int32_t> encode(std::string_view text, bool parse_special) const;
  // The bytes the ids stand for, concatenated; control tokens appear as their
  // text. SentencePiece: the space the encoder put in front is removed again.
  // Throws Error on an id outside the vocabulary.
  std::string decode(const std::vector<int32_t>& ids) const;

  // The vocabulary; the same object as the Model's where the tokenizer was
  // built around Model::shared_vocab().
  const Vocabulary& vocabulary() const;
  // Whether the model expects its BOS token in front of a prompt
  // (tokenizer.ggml.add_bos_token; absent: true for SentencePiece only).
  bool adds_bos() const;
  std::optional<int32_t> bos_id() const;
  std::optional<int32_t> eos_id() const;
  // The pre-tokenizer regexes in the order they are applied (empty for
  // SentencePiece).
  const std::vector<std::string>& pre_tokenizer_patterns() const;

 private:
  struct State;
  explicit Tokenizer(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace neuronlens

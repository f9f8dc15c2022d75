// The vocabulary: token strings as a model file stores them, undone to the
// bytes they stand for, and a display form that is always valid UTF-8.
//
// Sources:
//  - GGUF: tokenizer.ggml.model ("gpt2" = byte-level BPE, "llama" =
//    SentencePiece), tokenizer.ggml.tokens (array of string, index = id),
//    tokenizer.ggml.token_type (array of int, llama_token_type numbering,
//    optional), tokenizer.ggml.bos_token_id / eos_token_id (optional).
//  - Hugging Face tokenizer.json: {"model": {"type": "BPE", "vocab": {token:
//    id}}, "added_tokens": [{"id", "content", "special"}], "pre_tokenizer",
//    "decoder"}. The file does not say the encoding outright; the
//    pre_tokenizer and decoder components betray it (see detect_encoding).
//    Special added tokens become Control, other added tokens UserDefined,
//    model.unk_token Unknown, SentencePiece "<0xNN>" pieces Byte. BOS/EOS are
//    left unset: they live in tokenizer_config.json, not here.
//
// Decisions that shape what a person sees:
//  - Control and user-defined tokens (and HF added tokens) are shown as their
//    raw text, like llama.cpp does: "<|im_end|>" is not byte-level encoded,
//    and user-defined tokens are stored already normalised.
//  - A SentencePiece piece spelled exactly "<0xNN>" (two hex digits, either
//    case) is that one byte, whatever its token type. This is what HF's
//    ByteFallback decoder does, and tokenizer.json carries no token types;
//    in real GGUF vocabularies every such piece is typed Byte anyway.
//  - The display string keeps control characters ('\n', '\t', even NUL) as
//    the bytes themselves: they are valid UTF-8, and how to draw them (a
//    "↵", a "\n") is the front end's choice. Only bytes that are not valid
//    UTF-8 become the four characters "\xNN" — so a token whose text really
//    is backslash-x-N-N displays the same as an escaped byte; `bytes` tells
//    them apart.
#include <algorithm>
#include <array>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "io/json_input.h"
#include "io/whole_file.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/vocab.h"
#include "tokenizer/token_text.h"
#include "tokenizer/utf8.h"

namespace neuronlens {
namespace {

// GPT-2's bytes_to_unicode (openai/gpt-2 encoder.py): the 188 bytes that are
// printable Latin-1 map to the code point of the same number; the other 68
// (controls, space, 0x7F..0xA0, soft hyphen 0xAD) map, in byte order, to
// U+0100 onward, so every byte has a visible, non-space stand-in.
class ByteLevelTable {
 public:
  static constexpr char32_t kLastCodePoint = 0x100 + 67;  // U+0143

  ByteLevelTable() {
    byte_of_code_point_.fill(-1);
    char32_t next_substitute = 0x100;
    for (int byte = 0; byte < 256; ++byte) {
      const bool printable = (byte >= 0x21 && byte <= 0x7E) || (byte >= 0xA1 && byte <= 0xAC) ||
                             (byte >= 0xAE && byte <= 0xFF);
      const char32_t code_point = printable ? static_cast<char32_t>(byte) : next_substitute++;
      code_point_of_byte_[byte] = code_point;
      byte_of_code_point_[code_point] = static_cast<int16_t>(byte);
    }
  }

  char32_t code_point_of(unsigned char byte) const { return code_point_of_byte_[byte]; }
  // The byte `code_point` stands for, or -1 when it is not in the table.
  int byte_of(char32_t code_point) const {
    return code_point <= kLastCodePoint ? byte_of_code_point_[code_point] : -1;
  }

 private:
  std::array<char32_t, 256> code_point_of_byte_{};
  std::array<int16_t, kLastCodePoint + 1> byte_of_code_point_{};
};

const ByteLevelTable& byte_level_table() {
  static const ByteLevelTable table;
  return table;
}

int hex_digit_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// The byte a piece spelled exactly "<0xNN>" stands for.
std::optional<char> byte_fallback_value(std::string_view piece) {
  if (piece.size() != 6 || !piece.starts_with("<0x") || piece.back() != '>') return std::nullopt;
  const int high = hex_digit_value(piece[3]);
  const int low = hex_digit_value(piece[4]);
  if (high < 0 || low < 0) return std::nullopt;
  return static_cast<char>(high * 16 + low);
}

constexpr std::string_view kSentencePieceSpace = "\xE2\x96\x81";  // U+2581 '▁'

std::string token_bytes(VocabEncoding encoding, const std::string& raw, TokenType type) {
  if (type == TokenType::Control || type == TokenType::UserDefined) return raw;
  return encoding == VocabEncoding::ByteLevelBpe ? byte_level_decode(raw) : sentencepiece_decode(raw);
}

TokenType token_type_from_number(int64_t number, const std::string& where, size_t id) {
  if (number < static_cast<int64_t>(TokenType::Undefined) || number > static_cast<int64_t>(TokenType::Byte)) {
    throw bad_file(where + ": token " + std::to_string(id) + " has type " + std::to_string(number) +
                   ", expected 0..6 (undefined, normal, unknown, control, user_defined, unused, byte)");
  }
  return static_cast<TokenType>(number);
}

std::optional<int64_t> gguf_token_id(const GgufFile& file, const std::string& key, size_t vocab_size) {
  if (!file.has(key)) return std::nullopt;
  const uint64_t id = file.get_uint(key);
  if (id >= vocab_size) {
    throw bad_file(file.path() + ": metadata key '" + key + "' is " + std::to_string(id) +
                   ", but the vocabulary has only " + std::to_string(vocab_size) + " tokens");
  }
  return static_cast<int64_t>(id);
}

// --- tokenizer.json ---------------------------------------------------------

using nlohmann::json;

// True when `component` (a pre_tokenizer or decoder, possibly a Sequence of
// them, nested to any depth) has a part for which `matches` holds.
template <typename Predicate>
bool has_component(const json& component, const Predicate& matches) {
  if (component.is_object()) {
    if (matches(component)) return true;
    for (const auto& [key, child] : component.items()) {
      if (child.is_structured() && has_component(child, matches)) return true;
    }
  } else if (component.is_array()) {
    for (const json& child : component) {
      if (has_component(child, matches)) return true;
    }
  }
  return false;
}

bool has_type(const json& part, std::string_view type) {
  const auto it = part.find("type");
  return it != part.end() && it->is_string() && it->get_ref<const std::string&>() == type;
}

VocabEncoding detect_encoding(const json& root, const std::string& path) {
  const json none;
  const json& pre_tokenizer = root.contains("pre_tokenizer") ? root["pre_tokenizer"] : none;
  const json& decoder = root.contains("decoder") ? root["decoder"] : none;

  const auto is_byte_level = [](const json& part) { return has_type(part, "ByteLevel"); };
  if (has_component(pre_tokenizer, is_byte_level) || has_component(decoder, is_byte_level)) {
    return VocabEncoding::ByteLevelBpe;
  }
  // Llama 2 / Mistral: decoder Sequence[Replace "▁" -> " ", ByteFallback, Fuse,
  // Strip]; newer exports use Metaspace instead of the Replace.
  const auto is_sentencepiece = [](const json& part) {
    if (has_type(part, "Metaspace") || has_type(part, "ByteFallback")) return true;
    if (!has_type(part, "Replace")) return false;
    const auto pattern = part.find("pattern");
    if (pattern == part.end() || !pattern->is_object()) return false;
    const auto text = pattern->find("String");
    return text != pattern->end() && text->is_string() && text->get_ref<const std::string&>() == kSentencePieceSpace;
  };
  if (has_component(pre_tokenizer, is_sentencepiece) || has_component(decoder, is_sentencepiece)) {
    return VocabEncoding::SentencePiece;
  }
  throw bad_file(path +
                 ": cannot tell how tokens are encoded: neither a ByteLevel pre_tokenizer/decoder "
                 "(byte-level BPE) nor a Metaspace, ByteFallback or Replace('\xE2\x96\x81') decoder (SentencePiece)");
}

// tokenizer.json as the vocabulary needs it: the document without
// model.merges (skipped) and model.vocab (left as an empty object), whose
// entries go straight into `vocab`, in file order. Those two members are
// nearly all of a 10 MB file (Llama 3: 128k tokens, 280k merges); building a
// DOM for them would triple the load time.
struct TokenizerJson {
  json document;
  std::vector<std::pair<std::string, json>> vocab;  // (token, id as written)
};

// A SAX handler that builds the DOM the way nlohmann's own parser does (a
// stack of open containers; the next value goes to the innermost one), with
// the two members above diverted.
class TokenizerJsonHandler : public nlohmann::json_sax<json> {
 public:
  explicit TokenizerJsonHandler(TokenizerJson& out) : out_(out) {}
  const std::string& error() const { return error_; }

  bool null() override { return value(nullptr); }
  bool boolean(bool v) override { return value(v); }
  bool number_integer(number_integer_t v) override { return value(v); }
  bool number_unsigned(number_unsigned_t v) override { return value(v); }
  bool number_float(number_float_t v, const string_t&) override { return value(v); }
  bool string(string_t& v) override { return value(std::move(v)); }
  bool binary(binary_t&) override { return fail("binary values are not JSON"); }
  bool key(string_t& k) override {
    if (skip_depth_ == 0) key_ = std::move(k);
    return true;
  }
  bool start_object(std::size_t) override { return open(json::value_t::object); }
  bool start_array(std::size_t) override { return open(json::value_t::array); }
  bool end_object() override { return close(); }
  bool end_array() override { return close(); }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    return fail(std::string("not valid JSON: ") + e.what());
  }

 private:
  bool at_model_member(std::string_view member) const {
    return path_.size() == 2 && path_[1] == "model" && stack_.back()->is_object() && key_ == member;
  }
  bool in_vocab() const { return path_.size() == 3 && vocab_open_; }

  template <typename Value>
  bool value(Value&& v) {
    if (skip_depth_ > 0) return true;
    if (in_vocab()) {
      out_.vocab.emplace_back(std::move(key_), json(std::forward<Value>(v)));
      return true;
    }
    place(json(std::forward<Value>(v)));
    return true;
  }

  bool open(json::value_t kind) {
    // The bound of io/json_input.h: later messages and copies recurse per level.
    if (stack_.size() + static_cast<size_t>(skip_depth_) >= static_cast<size_t>(kMaxJsonDepth)) {
      return fail(json_too_deep_message());
    }
    if (skip_depth_ > 0 || at_model_member("merges")) {
      ++skip_depth_;
      return true;
    }
    if (in_vocab()) return fail("model.vocab: token '" + key_ + "' has a structured id, expected an integer");
    const bool opens_vocab = kind == json::value_t::object && at_model_member("vocab");
    json* container = place(json(kind));
    path_.push_back(stack_.empty() || !stack_.back()->is_object() ? std::string() : key_);
    stack_.push_back(container);
    vocab_open_ = opens_vocab;
    return true;
  }

  bool close() {
    if (skip_depth_ > 0) {
      --skip_depth_;
      return true;
    }
    stack_.pop_back();
    path_.pop_back();
    vocab_open_ = false;
    return true;
  }

  json* place(json&& v) {
    if (stack_.empty()) {
      out_.document = std::move(v);
      return &out_.document;
    }
    json& parent = *stack_.back();
    if (parent.is_array()) {
      parent.push_back(std::move(v));
      return &parent.back();
    }
    json& slot = parent[key_];
    slot = std::move(v);
    return &slot;
  }

  bool fail(std::string message) {
    error_ = std::move(message);
    return false;
  }

  TokenizerJson& out_;
  std::vector<json*> stack_;       // open containers, outermost first
  std::vector<std::string> path_;  // the key each open container sits under ("" for the root and array items)
  std::string key_;                // the last key read
  int skip_depth_ = 0;             // > 0 inside model.merges
  bool vocab_open_ = false;        // the innermost open container is model.vocab
  std::string error_;
};

TokenizerJson read_tokenizer_json(const std::string& path) {
  // Parsing from memory is several times faster than from the stream.
  const std::string contents = read_whole_file(path, ErrorKind::BadFile);
  TokenizerJson out;
  TokenizerJsonHandler handler(out);
  if (!json::sax_parse(contents, &handler)) throw bad_file(path + ": " + handler.error());
  return out;
}

const json& require_member(const json& object, const char* key, json::value_t kind, const std::string& where,
                           const char* kind_name) {
  const auto it = object.find(key);
  if (it == object.end()) throw bad_file(where + ": '" + key + "' is missing");
  if (it->type() != kind) throw bad_file(where + ": '" + key + "' is not " + kind_name);
  return *it;
}

// An id from tokenizer.json, checked to be a non-negative integer below a
// bound that keeps a hostile id from making us allocate gigabytes.
size_t json_token_id(const json& value, const std::string& where, const std::string& token) {
  constexpr uint64_t kMaxTokens = uint64_t{1} << 24;
  // nlohmann/json parses every non-negative integer as unsigned, so this
  // rejects negatives, floats and strings at once.
  if (!value.is_number_unsigned() || value.get<uint64_t>() >= kMaxTokens) {
    throw bad_file(where + ": token '" + token + "' has id " + json_excerpt(value) + ", expected an integer in 0.." +
                   std::to_string(kMaxTokens - 1));
  }
  return static_cast<size_t>(value.get<uint64_t>());
}

}  // namespace

std::string_view token_type_name(TokenType type) {
  switch (type) {
    case TokenType::Undefined: return "undefined";
    case TokenType::Normal: return "normal";
    case TokenType::Unknown: return "unknown";
    case TokenType::Control: return "control";
    case TokenType::UserDefined: return "user_defined";
    case TokenType::Unused: return "unused";
    case TokenType::Byte: return "byte";
  }
  return "invalid";
}

std::string byte_level_decode(std::string_view encoded) {
  const ByteLevelTable& table = byte_level_table();
  std::string bytes;
  bytes.reserve(encoded.size());
  for (size_t pos = 0; pos < encoded.size();) {
    const auto decoded = utf8::decode_at(encoded, pos);
    if (!decoded) {
      // Not even valid UTF-8: keep the byte so the display shows it escaped.
      bytes += encoded[pos++];
      continue;
    }
    const int byte = table.byte_of(decoded->code_point);
    if (byte >= 0) {
      bytes += static_cast<char>(byte);
    } else {
      // Outside the table (some vocabularies hold literal text such as CJK
      // characters or real spaces): the character stands for itself.
      bytes.append(encoded.substr(pos, decoded->length));
    }
    pos += decoded->length;
  }
  return bytes;
}

std::string byte_level_encode(std::string_view bytes) {
  const ByteLevelTable& table = byte_level_table();
  std::string encoded;
  encoded.reserve(bytes.size() * 2);
  for (const char byte : bytes) utf8::append(encoded, table.code_point_of(static_cast<unsigned char>(byte)));
  return encoded;
}

std::string sentencepiece_decode(std::string_view piece) {
  if (const auto byte = byte_fallback_value(piece)) return std::string(1, *byte);
  std::string bytes;
  bytes.reserve(piece.size());
  for (size_t pos = 0; pos < piece.size();) {
    if (piece.substr(pos).starts_with(kSentencePieceSpace)) {
      bytes += ' ';
      pos += kSentencePieceSpace.size();
    } else {
      bytes += piece[pos++];
    }
  }
  return bytes;
}

std::string escape_invalid_utf8(std::string_view bytes) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string display;
  display.reserve(bytes.size());
  for (size_t pos = 0; pos < bytes.size();) {
    if (const auto decoded = utf8::decode_at(bytes, pos)) {
      display.append(bytes.substr(pos, decoded->length));
      pos += decoded->length;
      continue;
    }
    // Escape one byte and resynchronise on the next. The bytes after a bad
    // lead byte are continuation bytes, which are invalid on their own, so
    // this escapes exactly what Python's decoder reports as invalid.
    const auto byte = static_cast<unsigned char>(bytes[pos++]);
    display += "\\x";
    display += kHex[byte >> 4];
    display += kHex[byte & 0x0F];
  }
  return display;
}

Vocabulary Vocabulary::from_gguf(const GgufFile& file) {
  const std::string& path = file.path();
  const std::string& model = file.get_string("tokenizer.ggml.model");
  Vocabulary vocab;
  if (model == "gpt2") {
    vocab.encoding_ = VocabEncoding::ByteLevelBpe;
  } else if (model == "llama") {
    vocab.encoding_ = VocabEncoding::SentencePiece;
  } else {
    throw bad_file(path + ": tokenizer.ggml.model is '" + model +
                   "', which is not supported; supported: 'gpt2' (byte-level BPE), 'llama' (SentencePiece)");
  }

  std::vector<std::string> raw_tokens = file.get_string_array("tokenizer.ggml.tokens");
  if (raw_tokens.empty()) throw bad_file(path + ": metadata key 'tokenizer.ggml.tokens' is an empty array");

  std::vector<TokenType> types(raw_tokens.size(), TokenType::Normal);
  if (file.has("tokenizer.ggml.token_type")) {
    // The count is checked before the array is converted, at 8 bytes an entry.
    const size_t n_types = file.get_array_size("tokenizer.ggml.token_type");
    if (n_types != raw_tokens.size()) {
      throw bad_file(path + ": tokenizer.ggml.token_type has " + std::to_string(n_types) +
                     " entries, but tokenizer.ggml.tokens has " + std::to_string(raw_tokens.size()));
    }
    const std::vector<int64_t> numbers = file.get_int_array("tokenizer.ggml.token_type");
    for (size_t id = 0; id < numbers.size(); ++id) types[id] = token_type_from_number(numbers[id], path, id);
  }

  vocab.bos_id_ = gguf_token_id(file, "tokenizer.ggml.bos_token_id", raw_tokens.size());
  vocab.eos_id_ = gguf_token_id(file, "tokenizer.ggml.eos_token_id", raw_tokens.size());
  vocab.tokens_.resize(raw_tokens.size());
  for (size_t id = 0; id < raw_tokens.size(); ++id) {
    vocab.tokens_[id].raw = std::move(raw_tokens[id]);
    vocab.tokens_[id].type = types[id];
  }
  vocab.finish();
  return vocab;
}

Vocabulary Vocabulary::from_tokenizer_json(const std::string& path) {
  TokenizerJson file = read_tokenizer_json(path);
  const json& root = file.document;
  if (!root.is_object()) throw bad_file(path + ": expected a JSON object at the top level");
  const json& model = require_member(root, "model", json::value_t::object, path, "an object");
  // Older exports omit model.type; their vocab object is read as BPE's.
  if (model.contains("type") && model["type"] != "BPE") {
    throw bad_file(path + ": model.type is " + json_excerpt(model["type"]) + ", only \"BPE\" is supported");
  }
  require_member(model, "vocab", json::value_t::object, path + ": model", "an object");  // its entries are in file.vocab

  Vocabulary vocab;
  vocab.encoding_ = detect_encoding(root, path);

  // Place every token at its id; an id taken twice, or left empty, means the
  // file and the model's embedding rows would disagree.
  std::vector<std::string> raw_of_id;
  std::vector<bool> id_taken;
  std::vector<TokenType> type_of_id;
  const auto place = [&](size_t id, const std::string& raw, TokenType type, bool may_repeat) {
    if (id >= raw_of_id.size()) {
      raw_of_id.resize(id + 1);
      id_taken.resize(id + 1, false);
      type_of_id.resize(id + 1, TokenType::Normal);
    }
    if (id_taken[id]) {
      // An added token may restate a vocab entry ("<s>" in Llama 2's files).
      if (!may_repeat || raw_of_id[id] != raw) {
        throw bad_file(path + ": id " + std::to_string(id) + " is given to both '" + raw_of_id[id] + "' and '" + raw +
                       "'");
      }
    }
    raw_of_id[id] = raw;
    id_taken[id] = true;
    type_of_id[id] = type;
  };

  for (const auto& [raw, id] : file.vocab) {
    TokenType type = TokenType::Normal;
    if (vocab.encoding_ == VocabEncoding::SentencePiece && byte_fallback_value(raw)) type = TokenType::Byte;
    place(json_token_id(id, path + ": model.vocab", raw), raw, type, false);
  }
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    const json& added = root["added_tokens"];
    if (!added.is_array()) throw bad_file(path + ": 'added_tokens' is not an array");
    for (const json& entry : added) {
      const std::string where = path + ": added_tokens";
      if (!entry.is_object()) throw bad_file(where + ": an entry is not an object");
      const auto& content = require_member(entry, "content", json::value_t::string, where, "a string");
      const auto& raw = content.get_ref<const std::string&>();
      if (!entry.contains("id")) throw bad_file(where + ": token '" + raw + "' has no 'id'");
      const auto special_flag = entry.find("special");
      if (special_flag != entry.end() && !special_flag->is_boolean()) {
        throw bad_file(where + ": token '" + raw + "' has 'special' " + json_excerpt(*special_flag) +
                       ", expected true or false");
      }
      const bool special = special_flag != entry.end() && special_flag->get<bool>();
      place(json_token_id(entry["id"], where, raw), raw, special ? TokenType::Control : TokenType::UserDefined, true);
    }
  }
  if (raw_of_id.empty()) throw bad_file(path + ": model.vocab is empty");
  const auto hole = std::find(id_taken.begin(), id_taken.end(), false);
  if (hole != id_taken.end()) {
    throw bad_file(path + ": token ids are not dense: id " + std::to_string(hole - id_taken.begin()) +
                   " is missing, but ids go up to " + std::to_string(raw_of_id.size() - 1));
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const std::string& unk = model["unk_token"].get_ref<const std::string&>();
    const auto it = std::find(raw_of_id.begin(), raw_of_id.end(), unk);
    if (it != raw_of_id.end()) type_of_id[it - raw_of_id.begin()] = TokenType::Unknown;
  }

  vocab.tokens_.resize(raw_of_id.size());
  for (size_t id = 0; id < raw_of_id.size(); ++id) {
    vocab.tokens_[id].raw = std::move(raw_of_id[id]);
    vocab.tokens_[id].type = type_of_id[id];
  }
  vocab.finish();
  return vocab;
}

Vocabulary Vocabulary::from_tokens(VocabEncoding encoding, std::vector<std::string> raw_tokens,
                                   std::vector<TokenType> types) {
  if (!types.empty() && types.size() != raw_tokens.size()) {
    throw internal_error("vocabulary: " + std::to_string(types.size()) + " token types for " +
                         std::to_string(raw_tokens.size()) + " tokens");
  }
  Vocabulary vocab;
  vocab.encoding_ = encoding;
  vocab.tokens_.resize(raw_tokens.size());
  for (size_t id = 0; id < raw_tokens.size(); ++id) {
    vocab.tokens_[id].raw = std::move(raw_tokens[id]);
    vocab.tokens_[id].type = types.empty() ? TokenType::Normal : types[id];
  }
  vocab.finish();
  return vocab;
}

const Token& Vocabulary::token(int64_t id) const {
  if (id < 0 || id >= size()) {
    throw bad_input("token id " + std::to_string(id) + " is out of range: the vocabulary has " +
                    std::to_string(size()) + " tokens");
  }
  return tokens_[static_cast<size_t>(id)];
}

std::optional<int64_t> Vocabulary::find_raw(std::string_view raw) const {
  const auto it = std::lower_bound(sorted_by_raw_.begin(), sorted_by_raw_.end(), raw,
                                   [this](int64_t id, std::string_view wanted) {
                                     return std::string_view(tokens_[static_cast<size_t>(id)].raw) < wanted;
                                   });
  if (it == sorted_by_raw_.end() || tokens_[static_cast<size_t>(*it)].raw != raw) return std::nullopt;
  return *it;
}

void Vocabulary::finish() {
  for (Token& token : tokens_) {
    token.bytes = token_bytes(encoding_, token.raw, token.type);
    token.display = escape_invalid_utf8(token.bytes);
  }
  // Ties (a few vocabularies repeat a string) go to the lowest id, which is
  // the one a tokenizer would produce. Each string's first 8 bytes, read as a
  // big-endian number (zero-padded), order most pairs without touching the
  // strings: sorting Gemma 3's 262k tokens takes about a quarter of the time
  // that comparing the strings alone does.
  struct Key {
    uint64_t prefix;
    int64_t id;
  };
  std::vector<Key> keys(tokens_.size());
  for (size_t id = 0; id < tokens_.size(); ++id) {
    const std::string& raw = tokens_[id].raw;
    uint64_t prefix = 0;
    for (size_t i = 0; i < 8; ++i) {
      prefix = (prefix << 8) | (i < raw.size() ? static_cast<unsigned char>(raw[i]) : 0u);
    }
    keys[id] = Key{prefix, static_cast<int64_t>(id)};
  }
  std::sort(keys.begin(), keys.end(), [this](const Key& a, const Key& b) {
    if (a.prefix != b.prefix) return a.prefix < b.prefix;
    const std::string& raw_a = tokens_[static_cast<size_t>(a.id)].raw;
    const std::string& raw_b = tokens_[static_cast<size_t>(b.id)].raw;
    return raw_a != raw_b ? raw_a < raw_b : a.id < b.id;
  });
  sorted_by_raw_.resize(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) sorted_by_raw_[i] = keys[i].id;
}

}  // namespace neuronlens

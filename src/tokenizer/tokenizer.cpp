// Tokenizer: special-token partition, then byte-level or SentencePiece BPE.
//
// GGUF keys read (besides the vocabulary's): tokenizer.ggml.merges (array of
// "left right" strings, rank = index; byte-level only), tokenizer.ggml.pre
// (pre-tokenizer family; absent = GPT-2; "qwen2" also means NFC, as Qwen2's
// tokenizer.json has it), tokenizer.ggml.scores (array of
// float, one per token; SentencePiece), tokenizer.ggml.add_space_prefix
// (bool, default true), tokenizer.ggml.add_bos_token (bool),
// tokenizer.ggml.unknown_token_id.
//
// tokenizer.json members read: model.merges ("left right" strings or
// [left, right] pairs), model.ignore_merges, model.byte_fallback,
// model.unk_token, pre_tokenizer (Sequence, Split with a Regex or String
// pattern and behaviour Isolated, Digits, ByteLevel), normalizer (byte-level:
// none or NFC), normalizer/pre_tokenizer Prepend/Metaspace (SentencePiece's
// leading '▁'). Anything else there that would change the split is refused
// rather than silently ignored.
#include "neuronlens/tokenizer.h"

#include <algorithm>
#include <array>
#include <fstream>
#include <functional>
#include <sstream>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "io/json_input.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "tokenizer/bpe.h"
#include "tokenizer/normalize.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/special_trie.h"
#include "tokenizer/utf8.h"

namespace neuronlens {
namespace {

constexpr std::string_view kSentencePieceSpace = "\xE2\x96\x81";  // U+2581 '▁'

std::string merge_key(std::string_view left, std::string_view right) {
  std::string key;
  key.reserve(left.size() + right.size() + 1);
  key.append(left);
  key += ' ';
  key.append(right);
  return key;
}

// Lets the maps be searched with a string_view, without a copy per lookup.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
};
template <typename Value>
using StringMap = std::unordered_map<std::string, Value, StringHash, std::equal_to<>>;

// A span of the text that is either plain text or one special token.
struct Fragment {
  std::string_view text;
  int32_t special_id = -1;
};

}  // namespace

struct Tokenizer::State {
  // Never null; shared with the Model where the tokenizer was built around
  // its vocabulary.
  std::shared_ptr<const Vocabulary> vocab_ptr;
  const Vocabulary& vocab() const { return *vocab_ptr; }
  // Merge order: byte-level files and tokenizer.json give ranks; SentencePiece
  // GGUF files give per-token scores.
  bool merge_by_score = false;
  // Lowest id per raw string; the keys view the vocabulary's strings, which
  // live as long as the State does (it holds the vocabulary).
  std::unordered_map<std::string_view, int32_t> id_of_raw;
  StringMap<int32_t> merge_rank;  // "left right" -> rank
  std::vector<float> scores;        // by token id
  std::optional<PreTokenizer> pre;  // byte-level only
  bool ignore_merges = false;  // a whole word that is a token is taken as is (Llama 3)
  bool nfc = false;            // byte-level: text is put in NFC first (Qwen2)
  bool add_space_prefix = false;
  bool fuse_unk = false;  // tokenizer.json model.fuse_unk: a run of <unk> in a word becomes one
  bool adds_bos = false;
  std::optional<int32_t> unk_id;      // SentencePiece: what a byte with no <0xNN> token becomes
  std::optional<int32_t> bpe_unk_id;  // byte-level: tokenizer.json model.unk_token; GGUF files have none,
                                      // so a byte with no token is dropped, as llama.cpp does
  std::array<int32_t, 256> byte_token{};  // SentencePiece "<0xNN>" ids, -1 if absent

  SpecialTrie specials;  // control and unknown tokens (matched only with parse_special), user-defined tokens

  std::vector<std::string> no_patterns;

  void finish();
  std::optional<int32_t> find(std::string_view raw) const {
    const auto it = id_of_raw.find(raw);
    if (it == id_of_raw.end()) return std::nullopt;
    return it->second;
  }
  std::vector<Fragment> partition(std::string_view text, bool parse_special) const;
  void encode_byte_level(std::string_view text, std::vector<int32_t>& out) const;
  void encode_sentencepiece(std::string_view text, bool space_prefix, std::vector<int32_t>& out) const;
};

void Tokenizer::State::finish() {
  const auto& tokens = vocab().tokens();
  id_of_raw.reserve(tokens.size());
  byte_token.fill(-1);
  for (size_t id = 0; id < tokens.size(); ++id) {
    const Token& token = tokens[id];
    const auto token_id = static_cast<int32_t>(id);
    id_of_raw.emplace(std::string_view(token.raw), token_id);  // keeps the first (lowest) id
    if (vocab().encoding() == VocabEncoding::SentencePiece && token.type == TokenType::Byte && token.bytes.size() == 1) {
      int32_t& slot = byte_token[static_cast<unsigned char>(token.bytes[0])];
      if (slot < 0) slot = token_id;
    }
    const bool control = token.type == TokenType::Control || token.type == TokenType::Unknown;
    if ((control || token.type == TokenType::UserDefined) && !token.bytes.empty()) {
      specials.add(token.bytes, token_id, control);
    }
    if (!unk_id && token.type == TokenType::Unknown) unk_id = token_id;
  }
}

// Leftmost-longest match of special tokens, as Hugging Face's added-token
// splitter does; the text between matches is left for BPE.
std::vector<Fragment> Tokenizer::State::partition(std::string_view text, bool parse_special) const {
  std::vector<Fragment> fragments;
  size_t plain_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    const SpecialTrie::Match found = specials.longest_at(text, pos, parse_special);
    if (found.id < 0) {
      ++pos;
      continue;
    }
    if (pos > plain_start) fragments.push_back(Fragment{text.substr(plain_start, pos - plain_start)});
    fragments.push_back(Fragment{text.substr(pos, found.length), found.id});
    pos += found.length;
    plain_start = pos;
  }
  if (plain_start < text.size()) fragments.push_back(Fragment{text.substr(plain_start)});
  return fragments;
}

void Tokenizer::State::encode_byte_level(std::string_view text, std::vector<int32_t>& out) const {
  const PairPriority by_rank = [this](std::string_view left, std::string_view right) -> std::optional<double> {
    const auto it = merge_rank.find(merge_key(left, right));
    if (it == merge_rank.end()) return std::nullopt;
    return static_cast<double>(it->second);
  };
  for (const std::string_view piece : pre->split(text)) {
    const std::string word = byte_level_encode(piece);
    if (ignore_merges) {
      if (const auto id = find(word)) {
        out.push_back(*id);
        continue;
      }
    }
    for (const std::string_view symbol : bpe_merge(word, utf8_character_lengths(word), by_rank)) {
      if (const auto id = find(symbol)) {
        out.push_back(*id);
        continue;
      }
      // A merge whose result is not a token (a broken file), or a byte the
      // vocabulary cannot spell (SmolLM2 has no token for 0xFF, 0xC0, 0x13
      // and others): fall back to single bytes; a byte with no token becomes
      // the tokenizer.json unk_token, or is dropped (HF without unk_token,
      // llama.cpp).
      std::string_view rest = symbol;
      for (const size_t length : utf8_character_lengths(symbol)) {
        const std::string_view character = rest.substr(0, length);
        rest.remove_prefix(length);
        if (const auto id = find(character)) {
          out.push_back(*id);
        } else if (bpe_unk_id) {
          out.push_back(*bpe_unk_id);
        }
      }
    }
  }
}

void Tokenizer::State::encode_sentencepiece(std::string_view text, bool space_prefix,
                                           std::vector<int32_t>& out) const {
  // Spaces are '▁' in the vocabulary, and in the text the merges see.
  std::string word;
  word.reserve(text.size() + 8);
  if (space_prefix) word.append(kSentencePieceSpace);
  for (const char c : text) {
    if (c == ' ') {
      word.append(kSentencePieceSpace);
    } else {
      word += c;
    }
  }
  PairPriority priority;
  if (merge_by_score) {
    priority = [this](std::string_view left, std::string_view right) -> std::optional<double> {
      const auto id = find(merge_key(left, right).erase(left.size(), 1));
      if (!id) return std::nullopt;
      return -static_cast<double>(scores[static_cast<size_t>(*id)]);
    };
  } else {
    priority = [this](std::string_view left, std::string_view right) -> std::optional<double> {
      const auto it = merge_rank.find(merge_key(left, right));
      if (it == merge_rank.end()) return std::nullopt;
      return static_cast<double>(it->second);
    };
  }
  bool previous_unk = false;
  for (const std::string_view symbol : bpe_merge(word, utf8_character_lengths(word), priority)) {
    if (const auto id = find(symbol)) {
      out.push_back(*id);
      previous_unk = false;
      continue;
    }
    // Byte fallback: one <0xNN> token per byte of the character, or one
    // <unk> for the character when a byte has none (SentencePiece and HF).
    const bool has_all_bytes = std::all_of(symbol.begin(), symbol.end(), [this](char byte) {
      return byte_token[static_cast<unsigned char>(byte)] >= 0;
    });
    if (has_all_bytes) {
      for (const char byte : symbol) out.push_back(byte_token[static_cast<unsigned char>(byte)]);
      previous_unk = false;
    } else if (unk_id && !(fuse_unk && previous_unk)) {
      out.push_back(*unk_id);
      previous_unk = true;
    }
  }
}

namespace {

using nlohmann::json;

bool has_type(const json& part, std::string_view type) {
  const auto it = part.find("type");
  return it != part.end() && it->is_string() && it->get_ref<const std::string&>() == type;
}

bool bool_member(const json& part, const char* key, bool fallback) {
  const auto it = part.find(key);
  return it != part.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

// Regex list for a byte-level tokenizer.json pre_tokenizer.
void collect_patterns(const json& part, const std::string& path, std::vector<std::string>& patterns) {
  if (part.is_null()) return;
  if (!part.is_object()) throw bad_file(path + ": pre_tokenizer is not an object");
  if (has_type(part, "Sequence")) {
    const auto it = part.find("pretokenizers");
    if (it == part.end() || !it->is_array())
      throw bad_file(path + ": pre_tokenizer Sequence has no 'pretokenizers' array");
    for (const json& child : *it) collect_patterns(child, path, patterns);
  } else if (has_type(part, "Split")) {
    const auto pattern = part.find("pattern");
    const auto behavior = part.find("behavior");
    if (behavior == part.end() || *behavior != "Isolated" || bool_member(part, "invert", false)) {
      throw bad_file(path + ": pre_tokenizer Split with behavior " +
                     (behavior == part.end() ? "(none)" : json_excerpt(*behavior)) +
                     " is not supported; only \"Isolated\", not inverted");
    }
    if (pattern != part.end() && pattern->is_object() && pattern->contains("Regex") && (*pattern)["Regex"].is_string()) {
      patterns.push_back((*pattern)["Regex"].get<std::string>());
    } else if (pattern != part.end() && pattern->is_object() && pattern->contains("String") &&
               (*pattern)["String"].is_string()) {
      patterns.push_back("\\Q" + (*pattern)["String"].get<std::string>() + "\\E");
    } else {
      throw bad_file(path + ": pre_tokenizer Split has no Regex or String pattern");
    }
  } else if (has_type(part, "Digits")) {
    patterns.emplace_back(bool_member(part, "individual_digits", false) ? R"(\p{N})" : R"(\p{N}+)");
  } else if (has_type(part, "ByteLevel")) {
    if (bool_member(part, "add_prefix_space", false)) {
      throw bad_file(path + ": pre_tokenizer ByteLevel with add_prefix_space true is not supported");
    }
    if (bool_member(part, "use_regex", true)) patterns.emplace_back(kGpt2Pattern);
  } else {
    throw bad_file(path + ": pre_tokenizer " + part.value("type", std::string("(no type)")) +
                   " is not supported; supported: Sequence, Split, Digits, ByteLevel");
  }
}

// Byte-level tokenizer.json: does the normalizer put the text in NFC? Null
// and NFC (alone or in a Sequence) are understood; anything else is refused.
bool byte_level_normalizer_is_nfc(const json& normalizer, const std::string& path) {
  if (normalizer.is_null()) return false;
  if (has_type(normalizer, "NFC")) return true;
  if (has_type(normalizer, "Sequence")) {
    const auto it = normalizer.find("normalizers");
    if (it == normalizer.end() || !it->is_array())
      throw bad_file(path + ": normalizer Sequence has no 'normalizers' array");
    bool nfc = false;
    for (const json& child : *it) nfc = byte_level_normalizer_is_nfc(child, path) || nfc;
    return nfc;
  }
  throw bad_file(
      path + ": normalizer " +
      (normalizer.is_object() ? normalizer.value("type", std::string("(no type)")) : json_excerpt(normalizer)) +
      " is not supported for byte-level BPE; supported: none, NFC");
}

// SentencePiece-style tokenizer.json: is a '▁' put in front of the text?
bool prepends_space(const json& root) {
  bool found = false;
  const auto visit = [&](const auto& self, const json& part) -> void {
    if (part.is_array()) {
      for (const json& child : part) self(self, child);
      return;
    }
    if (!part.is_object()) return;
    if (has_type(part, "Prepend") && part.value("prepend", std::string()) == kSentencePieceSpace) found = true;
    if (has_type(part, "Metaspace")) {
      const std::string scheme = part.value("prepend_scheme", std::string());
      if (scheme == "always" || scheme == "first" || bool_member(part, "add_prefix_space", false)) found = true;
    }
    for (const auto& [key, child] : part.items()) {
      if (child.is_structured()) self(self, child);
    }
  };
  for (const char* key : {"normalizer", "pre_tokenizer"}) {
    if (root.contains(key)) visit(visit, root[key]);
  }
  return found;
}

}  // namespace

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  return from_gguf(file, std::make_shared<const Vocabulary>(Vocabulary::from_gguf(file)));
}

Tokenizer Tokenizer::from_gguf(const GgufFile& file, std::shared_ptr<const Vocabulary> vocab) {
  if (!vocab) throw internal_error(file.path() + ": the tokenizer was given no vocabulary");
  auto state = std::make_unique<State>();
  state->vocab_ptr = std::move(vocab);
  const std::string& path = file.path();
  const size_t n_tokens = static_cast<size_t>(state->vocab().size());
  if (state->vocab().encoding() == VocabEncoding::ByteLevelBpe) {
    const std::vector<std::string> merges = file.get_string_array("tokenizer.ggml.merges");
    state->merge_rank.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      if (merges[rank].find(' ') == std::string::npos) {
        throw bad_file(path + ": tokenizer.ggml.merges[" + std::to_string(rank) + "] is '" + merges[rank] +
                       "', expected two tokens separated by a space");
      }
      state->merge_rank.emplace(merges[rank], static_cast<int32_t>(rank));  // a repeat keeps its best rank
    }
    const std::string pre = file.get_string_or("tokenizer.ggml.pre", "default");
    try {
      state->pre.emplace(PreTokenizer::patterns_for_gguf_pre(pre));
    } catch (const Error& e) {
      throw bad_file(path + ": " + e.what());
    }
    state->ignore_merges = pre == "llama-bpe" || pre == "llama3" || pre == "dbrx" || pre == "smaug-bpe";
    state->nfc = pre == "qwen2";  // GGUF has no normalizer key; Qwen2's tokenizer.json normalizes to NFC
  } else {
    state->merge_by_score = true;
    if (file.has("tokenizer.ggml.scores")) {
      const size_t n_scores = file.get_array_size("tokenizer.ggml.scores");  // checked before converting
      if (n_scores != n_tokens) {
        throw bad_file(path + ": tokenizer.ggml.scores has " + std::to_string(n_scores) +
                       " entries, but tokenizer.ggml.tokens has " + std::to_string(n_tokens));
      }
      const std::vector<double> scores = file.get_float_array("tokenizer.ggml.scores");
      state->scores.assign(scores.begin(), scores.end());
    } else {
      state->scores.assign(n_tokens, 0.0f);  // llama.cpp's default too
    }
    state->add_space_prefix = file.get_bool_or("tokenizer.ggml.add_space_prefix", true);
  }
  state->adds_bos =
      file.get_bool_or("tokenizer.ggml.add_bos_token", state->vocab().encoding() == VocabEncoding::SentencePiece);
  if (file.has("tokenizer.ggml.unknown_token_id")) {
    const uint64_t unk = file.get_uint("tokenizer.ggml.unknown_token_id");
    if (unk >= n_tokens) {
      throw bad_file(path + ": tokenizer.ggml.unknown_token_id is " + std::to_string(unk) +
                     ", but the vocabulary has only " + std::to_string(n_tokens) + " tokens");
    }
    state->unk_id = static_cast<int32_t>(unk);
  }
  state->finish();
  return Tokenizer(std::move(state));
}

Tokenizer Tokenizer::from_tokenizer_json(const std::string& path) {
  // Vocabulary::from_tokenizer_json validates the vocabulary and added tokens.
  return from_tokenizer_json(path, std::make_shared<const Vocabulary>(Vocabulary::from_tokenizer_json(path)));
}

Tokenizer Tokenizer::from_tokenizer_json(const std::string& path, std::shared_ptr<const Vocabulary> vocab) {
  if (!vocab) throw internal_error(path + ": the tokenizer was given no vocabulary");
  auto state = std::make_unique<State>();
  state->vocab_ptr = std::move(vocab);
  json root;
  root = read_json_file(path);
  const json& model = root["model"];
  if (model.contains("merges")) {
    const json& merges = model["merges"];
    if (!merges.is_array()) throw bad_file(path + ": model.merges is not an array");
    state->merge_rank.reserve(merges.size());
    for (size_t rank = 0; rank < merges.size(); ++rank) {
      const json& merge = merges[rank];
      if (merge.is_string() && merge.get_ref<const std::string&>().find(' ') != std::string::npos) {
        state->merge_rank.emplace(merge.get<std::string>(), static_cast<int32_t>(rank));
      } else if (merge.is_array() && merge.size() == 2 && merge[0].is_string() && merge[1].is_string()) {
        state->merge_rank.emplace(
            merge_key(merge[0].get_ref<const std::string&>(), merge[1].get_ref<const std::string&>()),
            static_cast<int32_t>(rank));
      } else {
        throw bad_file(path + ": model.merges[" + std::to_string(rank) + "] is " + json_excerpt(merge) +
                    ", expected \"left right\" or [\"left\", \"right\"]");
      }
    }
  }
  state->ignore_merges = bool_member(model, "ignore_merges", false);
  state->fuse_unk = bool_member(model, "fuse_unk", false);
  if (state->vocab().encoding() == VocabEncoding::ByteLevelBpe) {
    std::vector<std::string> patterns;
    if (root.contains("pre_tokenizer")) collect_patterns(root["pre_tokenizer"], path, patterns);
    if (root.contains("normalizer")) state->nfc = byte_level_normalizer_is_nfc(root["normalizer"], path);
    try {
      state->pre.emplace(std::move(patterns));
    } catch (const Error& e) {
      throw bad_file(path + ": " + e.what());
    }
  } else {
    state->add_space_prefix = prepends_space(root);
  }
  if (model.contains("unk_token") && model["unk_token"].is_string()) {
    const auto& tokens = state->vocab().tokens();
    const std::string& unk = model["unk_token"].get_ref<const std::string&>();
    for (size_t id = 0; id < tokens.size(); ++id) {
      if (tokens[id].raw == unk) {
        state->unk_id = static_cast<int32_t>(id);
        if (state->vocab().encoding() == VocabEncoding::ByteLevelBpe) state->bpe_unk_id = state->unk_id;
        break;
      }
    }
  }
  state->finish();
  if (!bool_member(model, "byte_fallback", state->vocab().encoding() == VocabEncoding::SentencePiece)) {
    state->byte_token.fill(-1);
  }
  return Tokenizer(std::move(state));
}

Tokenizer::Tokenizer(std::unique_ptr<State> state) : state_(std::move(state)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

const Vocabulary& Tokenizer::vocabulary() const { return state_->vocab(); }
bool Tokenizer::adds_bos() const { return state_->adds_bos; }
std::optional<int32_t> Tokenizer::bos_id() const {
  if (const auto id = state_->vocab().bos_id()) return static_cast<int32_t>(*id);
  return std::nullopt;
}
std::optional<int32_t> Tokenizer::eos_id() const {
  if (const auto id = state_->vocab().eos_id()) return static_cast<int32_t>(*id);
  return std::nullopt;
}
const std::vector<std::string>& Tokenizer::pre_tokenizer_patterns() const {
  return state_->pre ? state_->pre->patterns() : state_->no_patterns;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool parse_special) const {
  const State& s = *state_;
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 1);
  // llama.cpp: SentencePiece puts its '▁' before the first text fragment and
  // before text that follows a special token.
  bool after_special = true;
  for (const Fragment& fragment : s.partition(text, parse_special)) {
    if (fragment.special_id >= 0) {
      ids.push_back(fragment.special_id);
      after_special = true;
      continue;
    }
    if (s.vocab().encoding() == VocabEncoding::ByteLevelBpe) {
      // Hugging Face normalizes each piece between special tokens, not the
      // special tokens themselves.
      if (s.nfc) {
        s.encode_byte_level(nfc_normalize(fragment.text), ids);
      } else {
        s.encode_byte_level(fragment.text, ids);
      }
    } else {
      s.encode_sentencepiece(fragment.text, s.add_space_prefix && after_special, ids);
    }
    after_special = false;
  }
  return ids;
}

std::string Tokenizer::decode(const std::vector<int32_t>& ids) const {
  const State& s = *state_;
  std::string text;
  for (const int32_t id : ids) text.append(s.vocab().token(id).bytes);
  if (s.vocab().encoding() == VocabEncoding::SentencePiece && s.add_space_prefix && !ids.empty() &&
      s.vocab().token(ids.front()).type != TokenType::Control && text.starts_with(' ')) {
    text.erase(0, 1);
  }
  return text;
}

}  // namespace neuronlens

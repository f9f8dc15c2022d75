// Tokenizer encode/decode.
//
//  - The default model (SmolLM2, byte-level BPE, pre "smollm") and copies of
//    its vocabulary under the "llama-bpe" and "qwen2" pre-tokenizers (GGUF
//    and tokenizer.json, written by scripts/fixtures/gen_tokenizer_fixtures.py)
//    against Hugging Face `tokenizers`' ids, committed in
//    tests/fixtures/tokenizer/smollm_reference.json by
//    scripts/make_tokenizer_reference.py.
//  - The pre-tokenizer regexes alone against HF's split of the same texts
//    (needs no model).
//  - A tiny SentencePiece GGUF with encodings worked out by hand.
//  - Round trips, invalid UTF-8, special-token parsing, long inputs.
#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/tokenizer.h"
#include "test_paths.h"
#include "tokenizer/normalize.h"
#include "tokenizer/pretokenizer.h"

namespace neuronlens {
namespace {

using nlohmann::json;
using Ids = std::vector<int32_t>;

// Committed fixtures live next to this file's folder, in the source tree.
std::filesystem::path committed_fixture(const std::string& name) {
  return std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures" / "tokenizer" / name;
}

std::string generated_fixture(const std::string& name) { return testing::fixture_path("tokenizer/" + name); }

json read_json(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path.string());
  std::ostringstream contents;
  contents << in.rdbuf();
  return json::parse(contents.str());
}

const json& reference() {
  static const json document = read_json(committed_fixture("smollm_reference.json"));
  return document;
}

const Tokenizer& default_tokenizer(const std::string& model_path) {
  static const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(model_path));
  return tokenizer;
}

std::string show(std::string_view text) {
  std::string shown;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x20 || byte == 0x7F) {
      static constexpr char kHex[] = "0123456789ABCDEF";
      shown += "\\x";
      shown += kHex[byte >> 4];
      shown += kHex[byte & 0x0F];
    } else {
      shown += c;
    }
  }
  return shown;
}

// Every reference text encoded (special tokens parsed, as HF does) gives the
// reference ids, and decodes back to the text (to its NFC form for qwen2,
// whose tokenizer normalizes first).
void expect_reference_ids(const Tokenizer& tokenizer, const std::string& variant) {
  const json& texts = reference().at("texts");
  const json& ids = reference().at("ids").at(variant);
  ASSERT_EQ(texts.size(), ids.size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    const Ids expected = ids[i].get<Ids>();
    const Ids got = tokenizer.encode(text, /*parse_special=*/true);
    EXPECT_EQ(got, expected) << variant << ": text " << i << " \"" << show(text) << "\"";
    EXPECT_EQ(tokenizer.decode(got), variant == "qwen2" ? nfc_normalize(text) : text) << variant << ": text " << i;
  }
}

TEST(Tokenizer, DefaultModelMatchesHuggingFace) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model);
  const Tokenizer& tokenizer = default_tokenizer(model);
  EXPECT_EQ(tokenizer.vocabulary().size(), 49152);
  EXPECT_FALSE(tokenizer.adds_bos());
  EXPECT_EQ(tokenizer.bos_id(), 1);
  EXPECT_EQ(tokenizer.eos_id(), 2);
  EXPECT_EQ(tokenizer.pre_tokenizer_patterns(), PreTokenizer::patterns_for_gguf_pre("smollm"));
  expect_reference_ids(tokenizer, "smollm");
}

TEST(Tokenizer, OtherPreTokenizersMatchHuggingFace) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model);  // the fixtures are built from its vocabulary
  for (const std::string variant : {"llama-bpe", "qwen2"}) {
    SCOPED_TRACE(variant);
    expect_reference_ids(Tokenizer::from_gguf(GgufFile::open(generated_fixture("smollm_" + variant + ".gguf"))),
                         variant);
  }
}

TEST(Tokenizer, TokenizerJsonMatchesHuggingFace) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model);
  for (const std::string variant : {"smollm", "llama-bpe", "qwen2"}) {
    SCOPED_TRACE(variant);
    expect_reference_ids(Tokenizer::from_tokenizer_json(generated_fixture("smollm_" + variant + "/tokenizer.json")),
                         variant);
  }
}

// gen_vocab_reference.py's Llama-2-style tokenizer.json: merges by rank, byte
// fallback, <unk> for characters without bytes (fused), '▁' prepended.
TEST(Tokenizer, SentencePieceTokenizerJsonMatchesHuggingFace) {
  const Tokenizer tokenizer =
      Tokenizer::from_tokenizer_json(testing::fixture_path("vocab_reference/hf_sentencepiece/tokenizer.json"));
  const json& cases = reference().at("hf_sentencepiece");
  for (size_t i = 0; i < cases.at("texts").size(); ++i) {
    const std::string text = cases["texts"][i].get<std::string>();
    EXPECT_EQ(tokenizer.encode(text, true), cases["ids"][i].get<Ids>()) << "text " << i << " \"" << show(text) << "\"";
  }
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("the thing", true)), "the thing");
}

TEST(Tokenizer, PreTokenizerSplitsLikeHuggingFace) {
  const json& texts = reference().at("texts");
  for (const std::string variant : {"smollm", "llama-bpe", "qwen2"}) {
    const PreTokenizer pre(PreTokenizer::patterns_for_gguf_pre(variant));
    const json& pieces = reference().at("pieces").at(variant);
    for (size_t i = 0; i < texts.size(); ++i) {
      const std::string text = texts[i].get<std::string>();
      std::vector<std::pair<size_t, size_t>> got;
      for (const std::string_view piece : pre.split(text)) {
        const auto begin = static_cast<size_t>(piece.data() - text.data());
        got.emplace_back(begin, begin + piece.size());
      }
      std::vector<std::pair<size_t, size_t>> expected;
      for (const json& span : pieces[i]) expected.emplace_back(span[0].get<size_t>(), span[1].get<size_t>());
      EXPECT_EQ(got, expected) << variant << ": text " << i << " \"" << show(text) << "\"";
    }
  }
}

// NFC (Qwen2's normalizer): composes, leaves ASCII and NFC text alone, keeps
// invalid bytes where they were and normalizes the valid text around them.
TEST(Tokenizer, NfcNormalize) {
  EXPECT_EQ(nfc_normalize(""), "");
  EXPECT_EQ(nfc_normalize("plain ascii\n"), "plain ascii\n");
  EXPECT_EQ(nfc_normalize("e\xCC\x81"), "\xC3\xA9");                       // e + U+0301 -> U+00E9
  EXPECT_EQ(nfc_normalize("\xE1\x84\x80\xE1\x85\xA1"), "\xEA\xB0\x80");      // Hangul jamo -> U+AC00
  EXPECT_EQ(nfc_normalize("\xE2\x84\xAB"), "\xC3\x85");                    // U+212B ANGSTROM SIGN -> U+00C5
  EXPECT_EQ(nfc_normalize("\xEF\xAC\x81"), "\xEF\xAC\x81");                // U+FB01 ligature: NFKC only
  EXPECT_EQ(nfc_normalize("a\xFF" "e\xCC\x81\xC3"), "a\xFF\xC3\xA9\xC3");        // invalid bytes kept
  EXPECT_EQ(nfc_normalize("\xED\xA0\x80" "e\xCC\x81"), "\xED\xA0\x80\xC3\xA9");  // surrogate bytes kept
}

// A byte-level tokenizer.json normalizer other than NFC would change the
// text in a way we do not reproduce: refused, not ignored.
TEST(Tokenizer, UnsupportedNormalizerIsRefused) {
  json document = read_json(generated_fixture("smollm_qwen2/tokenizer.json"));
  EXPECT_EQ(document["normalizer"], json({{"type", "NFC"}}));
  document["normalizer"] = {{"type", "Lowercase"}};
  const auto path = std::filesystem::temp_directory_path() / "neuronlens_test_lowercase_tokenizer.json";
  std::ofstream(path) << document.dump();
  try {
    Tokenizer::from_tokenizer_json(path.string());
    ADD_FAILURE() << "a Lowercase normalizer was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("normalizer Lowercase is not supported"), std::string::npos) << e.what();
  }
  std::filesystem::remove(path);
}

TEST(Tokenizer, UnknownPreTokenizerIsRefused) {
  EXPECT_THROW(PreTokenizer::patterns_for_gguf_pre("no-such-family"), Error);
  EXPECT_THROW(PreTokenizer({"(unclosed"}), Error);
}

TEST(Tokenizer, SpecialTokensOnlyWhenAsked) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model);
  const Tokenizer& tokenizer = default_tokenizer(model);
  const std::string chat = "<|im_start|>user\nhi<|im_end|>";
  const Ids parsed = tokenizer.encode(chat, true);
  ASSERT_GE(parsed.size(), 3u);
  EXPECT_EQ(parsed.front(), 1);  // <|im_start|>
  EXPECT_EQ(parsed.back(), 2);   // <|im_end|>
  const Ids plain = tokenizer.encode(chat, false);
  for (const int32_t id : plain) {
    EXPECT_NE(tokenizer.vocabulary().token(id).type, TokenType::Control) << "id " << id;
  }
  EXPECT_GT(plain.size(), parsed.size());
  EXPECT_EQ(tokenizer.decode(plain), chat);
  EXPECT_EQ(tokenizer.decode(parsed), chat);
}

// Invalid UTF-8 is encoded byte for byte, never an error: each invalid byte
// becomes the token that stands for that byte; a byte the vocabulary has no
// token for is dropped.
TEST(Tokenizer, InvalidUtf8IsEncodedByteForByte) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model);
  const Tokenizer& tokenizer = default_tokenizer(model);
  const Vocabulary& vocab = tokenizer.vocabulary();
  // Truncated, surrogate, above U+10FFFF, stray continuation bytes.
  const std::string text = "ok \xC3 bad \xED\xA0\x80 end \xF4\x90\x80\x80 \x80\xBFx\xE6\x97";
  const Ids ids = tokenizer.encode(text, true);
  EXPECT_EQ(tokenizer.decode(ids), text);
  const Ids lone = tokenizer.encode("\xC3", true);
  ASSERT_EQ(lone.size(), 1u);
  EXPECT_EQ(vocab.token(lone[0]).bytes, "\xC3");
  // SmolLM2 has no token for 0xFF: dropped, like llama.cpp and HF do.
  ASSERT_FALSE(vocab.find_raw(byte_level_encode("\xFF")));
  EXPECT_EQ(tokenizer.encode("\xFF", true), Ids{});
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("a\xFF\xFE b", true)), "a b");
}

// Deterministic pseudo-random byte strings and Unicode strings round trip,
// less the bytes the vocabulary cannot spell.
TEST(Tokenizer, RandomTextRoundTrips) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model);
  const Tokenizer& tokenizer = default_tokenizer(model);
  std::array<bool, 256> spellable{};
  for (int byte = 0; byte < 256; ++byte) {
    const std::string encoded = byte_level_encode(std::string(1, static_cast<char>(byte)));
    spellable[byte] = tokenizer.vocabulary().find_raw(encoded).has_value();
  }
  uint64_t state = 0x9E3779B97F4A7C15ull;
  const auto next = [&] {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  static const std::vector<std::string> kAlphabet = {
      "a", "Z", " ", "  ", "\n", "\t", "\r\n", "7", "42", "'s", "'LL", ".", "!?", "<|", "|>", "é", "ß", "日",
      "本", "😀", "\xE2\x80\x8D", "\xC2\xA0", "\xE3\x80\x80", "<|im_start|>", "<|im_end|>", "\xFF", "\x80", "\x00"};
  for (int trial = 0; trial < 300; ++trial) {
    std::string text;
    const int length = static_cast<int>(next() % 40);
    for (int i = 0; i < length; ++i) {
      if (next() % 4 == 0) {
        text += static_cast<char>(next() & 0xFF);
      } else {
        text += kAlphabet[next() % kAlphabet.size()];
      }
    }
    std::string expected;
    for (const char c : text) {
      if (spellable[static_cast<unsigned char>(c)]) expected += c;
    }
    for (const bool parse_special : {false, true}) {
      EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, parse_special)), expected)
          << "trial " << trial << " \"" << show(text) << "\"";
    }
  }
}

TEST(Tokenizer, LongRunsAreFast) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model);
  const Tokenizer& tokenizer = default_tokenizer(model);
  const auto start = std::chrono::steady_clock::now();
  for (const std::string& text : {std::string(200000, 'a'), std::string(200000, ' '), std::string(100000, '7')}) {
    const Ids ids = tokenizer.encode(text, true);
    EXPECT_LT(ids.size(), text.size() + 1);
    EXPECT_EQ(tokenizer.decode(ids), text);
  }
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_LT(seconds, 30.0) << "a quadratic merge loop?";  // ~0.3 s in Release, ~5 s under ASan
}

TEST(Tokenizer, DecodeRejectsBadIds) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(generated_fixture("sp_tiny.gguf")));
  EXPECT_THROW(tokenizer.decode({-1}), Error);
  EXPECT_THROW(tokenizer.decode({static_cast<int32_t>(tokenizer.vocabulary().size())}), Error);
  EXPECT_EQ(tokenizer.decode({}), "");
}

// sp_tiny.gguf: <unk> <s> </s>, <0x00>..<0xFF> (ids 3..258), then pieces from
// id 259 with scores (higher merges first):
//   259 ▁  260 h  261 e  262 l  263 o  264 w  265 r  266 d   (-10 each)
//   267 ll -1   268 he -2   269 or -2.5   270 llo -3   271 hello -4
//   272 ▁h -5   273 ▁hello -6   274 wor -7   275 ▁w -8
// "hello world" -> "▁hello▁world": ll, he, or, llo, hello (▁h is stale:
// h has merged), ▁hello, wor (▁w is stale) -> ▁hello ▁ wor l d.
constexpr int32_t kByte0 = 3;
constexpr int32_t kSpace = 259, kH = 260, kL = 262, kD = 266, kHello = 271, kSpaceH = 272, kSpaceHello = 273,
                  kWor = 274;

TEST(Tokenizer, SentencePieceMergesByScore) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(generated_fixture("sp_tiny.gguf")));
  EXPECT_TRUE(tokenizer.adds_bos());  // SentencePiece default when the key is absent
  EXPECT_TRUE(tokenizer.pre_tokenizer_patterns().empty());
  const Ids hello_world = {kSpaceHello, kSpace, kWor, kL, kD};
  EXPECT_EQ(tokenizer.encode("hello world", false), hello_world);
  EXPECT_EQ(tokenizer.decode(hello_world), "hello world");
  EXPECT_EQ(tokenizer.encode("", false), Ids{});

  // Byte fallback: 'i' and 'é' (C3 A9) have no piece.
  EXPECT_EQ(tokenizer.encode("hé", false), (Ids{kSpaceH, kByte0 + 0xC3, kByte0 + 0xA9}));
  EXPECT_EQ(tokenizer.decode({kSpaceH, kByte0 + 0xC3, kByte0 + 0xA9}), "hé");

  // "<s>" is a control token: parsed only when asked; the '▁' prefix goes
  // after it, as llama.cpp does.
  EXPECT_EQ(tokenizer.encode("<s>hi", true), (Ids{1, kSpaceH, kByte0 + 'i'}));
  EXPECT_EQ(tokenizer.encode("<s>hi", false),
            (Ids{kSpace, kByte0 + '<', kByte0 + 's', kByte0 + '>', kH, kByte0 + 'i'}));

  // Invalid UTF-8 falls back to bytes and round trips.
  EXPECT_EQ(tokenizer.encode("\xFF", false), (Ids{kSpace, kByte0 + 0xFF}));
  for (const std::string text : {"\xFF", "hello \xC3", "  two  spaces ", "\xED\xA0\x80"}) {
    EXPECT_EQ(tokenizer.decode(tokenizer.encode(text, false)), text) << show(text);
  }
  // A literal '▁' is a space to SentencePiece.
  EXPECT_EQ(tokenizer.decode(tokenizer.encode("x\xE2\x96\x81y", false)), "x y");
}

TEST(Tokenizer, SentencePieceWithoutSpacePrefix) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(generated_fixture("sp_tiny_noprefix.gguf")));
  const Ids hello_world = {kHello, kSpace, kWor, kL, kD};
  EXPECT_EQ(tokenizer.encode("hello world", false), hello_world);
  EXPECT_EQ(tokenizer.decode(hello_world), "hello world");
  EXPECT_EQ(tokenizer.decode(tokenizer.encode(" hello", false)), " hello");
}

}  // namespace
}  // namespace neuronlens

// Vocabulary: byte-level and SentencePiece decoding, the \xNN display
// escaping, and whole vocabularies (the default model, a tiny SentencePiece
// GGUF, two tokenizer.json files) against the independent Python reference
// written by scripts/fixtures/gen_vocab_reference.py.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <string>

#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/vocab.h"
#include "test_paths.h"
#include "tokenizer/token_text.h"

namespace neuronlens {
namespace {

using nlohmann::json;

std::string reference_path(const std::string& name) {
  return testing::fixture_path("vocab_reference/" + name);
}

json read_json(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("missing fixture " + path + " (run scripts/fixtures/gen_vocab_reference.py)");
  std::ostringstream contents;
  contents << in.rdbuf();
  return json::parse(contents.str());
}

std::string from_hex(const std::string& hex) {
  std::string bytes;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    bytes += static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16));
  }
  return bytes;
}

std::string utf8_of(char32_t code_point) {
  std::string out;
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else {  // the byte-level table never goes past U+0143: two bytes suffice
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
  return out;
}

// Compares every token with the reference; reports the first few mismatches
// rather than one failure per token of a 49k vocabulary.
void expect_matches_reference(const Vocabulary& vocab, const json& expected) {
  const VocabEncoding encoding = expected.at("encoding") == "byte_level_bpe" ? VocabEncoding::ByteLevelBpe
                                                                              : VocabEncoding::SentencePiece;
  EXPECT_EQ(vocab.encoding(), encoding);
  const json& tokens = expected.at("tokens");
  ASSERT_EQ(vocab.size(), static_cast<int64_t>(tokens.size()));
  EXPECT_EQ(vocab.size(), expected.at("n_tokens").get<int64_t>());
  if (expected.at("bos_id").is_null()) {
    EXPECT_FALSE(vocab.bos_id().has_value());
  } else {
    EXPECT_EQ(vocab.bos_id(), expected.at("bos_id").get<int64_t>());
  }
  if (expected.at("eos_id").is_null()) {
    EXPECT_FALSE(vocab.eos_id().has_value());
  } else {
    EXPECT_EQ(vocab.eos_id(), expected.at("eos_id").get<int64_t>());
  }

  int mismatches = 0;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const Token& got = vocab.token(static_cast<int64_t>(id));
    const json& want = tokens[id];
    const std::string want_raw = from_hex(want.at("raw_hex"));
    const std::string want_bytes = from_hex(want.at("bytes_hex"));
    const std::string& want_display = want.at("display").get_ref<const std::string&>();
    const int want_type = want.at("type");
    if (got.raw != want_raw || got.bytes != want_bytes || got.display != want_display ||
        static_cast<int>(got.type) != want_type) {
      if (++mismatches <= 10) {
        ADD_FAILURE() << "token " << id << ": raw '" << got.raw << "' vs '" << want_raw << "', display '"
                      << got.display << "' vs '" << want_display << "', type " << static_cast<int>(got.type)
                      << " vs " << want_type;
      }
    }
  }
  EXPECT_EQ(mismatches, 0) << "tokens that differ from the reference";
}

// --- byte-level table -------------------------------------------------------------

TEST(ByteLevel, AllBytesRoundTrip) {
  std::string all_bytes;
  for (int b = 0; b < 256; ++b) all_bytes += static_cast<char>(b);
  const std::string encoded = byte_level_encode(all_bytes);
  EXPECT_EQ(byte_level_decode(encoded), all_bytes);
  for (int b = 0; b < 256; ++b) {
    const std::string one(1, static_cast<char>(b));
    EXPECT_EQ(byte_level_decode(byte_level_encode(one)), one) << "byte " << b;
  }
  // The famous stand-ins, and bytes that map to themselves.
  EXPECT_EQ(byte_level_encode(" "), "\xC4\xA0");      // 'Ġ' U+0120
  EXPECT_EQ(byte_level_encode("\n"), "\xC4\x8A");     // 'Ċ' U+010A
  EXPECT_EQ(byte_level_encode("\t"), "\xC4\x89");     // 'ĉ' U+0109
  EXPECT_EQ(byte_level_encode("\xAD"), "\xC5\x83");   // soft hyphen: 'Ń' U+0143, the last stand-in
  EXPECT_EQ(byte_level_encode("!~"), "!~");
  EXPECT_EQ(byte_level_encode("\xE9"), "\xC3\xA9");   // byte 0xE9 is 'é' U+00E9
}

TEST(ByteLevel, TableMatchesGpt2EncoderPy) {
  const json table = read_json(reference_path("byte_level_table.json"));
  ASSERT_EQ(table.size(), 256u);
  for (int b = 0; b < 256; ++b) {
    const std::string expected = utf8_of(static_cast<char32_t>(table[static_cast<size_t>(b)].get<uint32_t>()));
    EXPECT_EQ(byte_level_encode(std::string(1, static_cast<char>(b))), expected) << "byte " << b;
  }
}

TEST(ByteLevel, DecodeKeepsCharactersOutsideTheTable) {
  EXPECT_EQ(byte_level_decode("\xC4\xA0\xE6\x97\xA5"), " \xE6\x97\xA5");  // "Ġ日" -> " 日"
  EXPECT_EQ(byte_level_decode("<|im_start|>"), "<|im_start|>");
  EXPECT_EQ(byte_level_decode("a b"), "a b");  // a real space is not in the table: itself
  EXPECT_EQ(byte_level_decode("\xFF" "a"), "\xFF" "a");  // invalid UTF-8 in the file survives as bytes
  EXPECT_EQ(byte_level_decode(""), "");
}

// --- SentencePiece ----------------------------------------------------------------

TEST(SentencePiece, DecodesSpacesAndBytePieces) {
  EXPECT_EQ(sentencepiece_decode("\xE2\x96\x81the"), " the");
  EXPECT_EQ(sentencepiece_decode("\xE2\x96\x81\xE2\x96\x81"), "  ");
  EXPECT_EQ(sentencepiece_decode("a\xE2\x96\x81" "b"), "a b");
  EXPECT_EQ(sentencepiece_decode("ing"), "ing");
  EXPECT_EQ(sentencepiece_decode("<0x0A>"), "\n");
  EXPECT_EQ(sentencepiece_decode("<0xE2>"), "\xE2");
  EXPECT_EQ(sentencepiece_decode("<0xe2>"), "\xE2");  // HF's ByteFallback accepts either case
  EXPECT_EQ(sentencepiece_decode("<0x00>"), std::string(1, '\0'));
  EXPECT_EQ(sentencepiece_decode("<0x4g>"), "<0x4g>");    // not hex: text
  EXPECT_EQ(sentencepiece_decode("<0x41>x"), "<0x41>x");  // not exactly the pattern: text
  EXPECT_EQ(sentencepiece_decode("<0x123>"), "<0x123>");
}

// --- display escaping -------------------------------------------------------------

TEST(EscapeInvalidUtf8, KeepsValidTextAndEscapesEachInvalidByte) {
  EXPECT_EQ(escape_invalid_utf8("plain"), "plain");
  EXPECT_EQ(escape_invalid_utf8("\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80"), "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80");
  EXPECT_EQ(escape_invalid_utf8("\n\t"), "\n\t");  // control characters are valid: kept for the front end
  EXPECT_EQ(escape_invalid_utf8("\xE2\x82"), "\\xE2\\x82");          // truncated 3-byte sequence
  EXPECT_EQ(escape_invalid_utf8("\xE2\x82" "A"), "\\xE2\\x82" "A");  // truncated, then ASCII resynchronises
  EXPECT_EQ(escape_invalid_utf8("a\x80" "b"), "a\\x80" "b");         // lone continuation byte
  EXPECT_EQ(escape_invalid_utf8("\xC0\xAF"), "\\xC0\\xAF");          // overlong '/'
  EXPECT_EQ(escape_invalid_utf8("\xE0\x80\xAF"), "\\xE0\\x80\\xAF");  // overlong, 3 bytes
  EXPECT_EQ(escape_invalid_utf8("\xED\xA0\x80"), "\\xED\\xA0\\x80");  // UTF-16 surrogate U+D800
  EXPECT_EQ(escape_invalid_utf8("\xED\x9F\xBF"), "\xED\x9F\xBF");      // U+D7FF: valid
  EXPECT_EQ(escape_invalid_utf8("\xF4\x8F\xBF\xBF"), "\xF4\x8F\xBF\xBF");  // U+10FFFF: the largest
  EXPECT_EQ(escape_invalid_utf8("\xF4\x90\x80\x80"), "\\xF4\\x90\\x80\\x80");  // U+110000
  EXPECT_EQ(escape_invalid_utf8("\xFF"), "\\xFF");
  EXPECT_EQ(escape_invalid_utf8("\xF0\x9F\x98\xE2\x82\xAC"), "\\xF0\\x9F\\x98\xE2\x82\xAC");
}

TEST(EscapeInvalidUtf8, AgreesWithPythonsStrictDecoder) {
  const json cases = read_json(reference_path("escape_cases.json"));
  ASSERT_GT(cases.size(), 1000u);
  int mismatches = 0;
  for (const json& c : cases) {
    const std::string input = from_hex(c.at("hex"));
    const std::string& expected = c.at("display").get_ref<const std::string&>();
    const std::string got = escape_invalid_utf8(input);
    if (got != expected && ++mismatches <= 10) {
      ADD_FAILURE() << "bytes " << c.at("hex").get<std::string>() << ": got '" << got << "', Python '" << expected << "'";
    }
  }
  EXPECT_EQ(mismatches, 0);
}

// --- whole vocabularies -------------------------------------------------------------

TEST(Vocabulary, DefaultModelMatchesReference) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(path);
  const GgufFile file = GgufFile::open(path);
  const Vocabulary vocab = Vocabulary::from_gguf(file);
  ASSERT_EQ(vocab.size(), 49152);
  expect_matches_reference(vocab, read_json(reference_path("default_model_vocab.json")));

  // Spot checks, values read with gguf-py.
  EXPECT_EQ(vocab.encoding(), VocabEncoding::ByteLevelBpe);
  EXPECT_EQ(vocab.token(0).display, "<|endoftext|>");
  EXPECT_EQ(vocab.token(2).display, "<|im_end|>");
  EXPECT_EQ(vocab.token(2).type, TokenType::Control);
  EXPECT_EQ(vocab.bos_id(), 1);
  EXPECT_EQ(vocab.eos_id(), 2);
  const std::optional<int64_t> dog = vocab.find_raw("\xC4\xA0" "dog");  // "Ġdog"
  ASSERT_TRUE(dog.has_value());
  EXPECT_EQ(*dog, 2767);
  EXPECT_EQ(vocab.token(*dog).display, " dog");
  EXPECT_EQ(vocab.token(*dog).type, TokenType::Normal);
  EXPECT_EQ(vocab.find_raw("<|im_start|>"), 1);
  EXPECT_FALSE(vocab.find_raw("no such token, surely").has_value());
  for (int64_t id = 0; id < vocab.size(); id += 97) {  // find_raw inverts token() across the table
    EXPECT_EQ(vocab.find_raw(vocab.token(id).raw), id);
  }
}

TEST(Vocabulary, SentencePieceGgufMatchesReference) {
  const GgufFile file = GgufFile::open(reference_path("sp_vocab.gguf"));
  const Vocabulary vocab = Vocabulary::from_gguf(file);
  expect_matches_reference(vocab, read_json(reference_path("sp_vocab_expected.json")));
  EXPECT_EQ(vocab.token(0).type, TokenType::Unknown);
  EXPECT_EQ(vocab.token(1).display, "<s>");
  EXPECT_EQ(vocab.token(3).type, TokenType::Byte);
  EXPECT_EQ(vocab.token(3).bytes, "\n");
  EXPECT_EQ(vocab.token(4).display, "\\xE2");
  EXPECT_EQ(vocab.find_raw("\xE2\x96\x81the"), 9);
}

TEST(Vocabulary, ByteLevelTokenizerJsonMatchesReference) {
  const Vocabulary vocab = Vocabulary::from_tokenizer_json(reference_path("hf_byte_level/tokenizer.json"));
  expect_matches_reference(vocab, read_json(reference_path("hf_byte_level_expected.json")));
  EXPECT_EQ(vocab.token(2).type, TokenType::Control);         // special added token
  EXPECT_EQ(vocab.token(20).type, TokenType::UserDefined);    // non-special added token
  EXPECT_EQ(vocab.token(11).display, " dog");
}

TEST(Vocabulary, SentencePieceTokenizerJsonMatchesReference) {
  const Vocabulary vocab = Vocabulary::from_tokenizer_json(reference_path("hf_sentencepiece/tokenizer.json"));
  expect_matches_reference(vocab, read_json(reference_path("hf_sentencepiece_expected.json")));
  EXPECT_EQ(vocab.token(0).type, TokenType::Unknown);  // model.unk_token
  EXPECT_EQ(vocab.token(1).type, TokenType::Control);
  EXPECT_EQ(vocab.token(4).type, TokenType::Byte);     // "<0x0A>"
  EXPECT_EQ(vocab.token(4).display, "\n");
}

TEST(Vocabulary, BadInputsThrowErrorsNamingTheProblem) {
  const json cases = read_json(reference_path("bad_cases.json"));
  ASSERT_FALSE(cases.empty());
  for (const json& c : cases) {
    const std::string path = reference_path(c.at("file"));
    const std::string expected = c.at("message");
    try {
      if (c.at("loader") == "gguf") {
        Vocabulary::from_gguf(GgufFile::open(path));
      } else {
        Vocabulary::from_tokenizer_json(path);
      }
      ADD_FAILURE() << path << ": loaded, but should fail with '" << expected << "'";
    } catch (const Error& e) {
      const std::string message = e.what();
      EXPECT_NE(message.find(expected), std::string::npos) << path << ": message '" << message << "' lacks '" << expected << "'";
      EXPECT_NE(message.find(path), std::string::npos) << "message '" << message << "' does not name the file";
    }
  }
}

TEST(Vocabulary, UnsupportedTokenizerModelListsSupportedOnes) {
  try {
    Vocabulary::from_gguf(GgufFile::open(reference_path("bad/unknown_tokenizer_model.gguf")));
    FAIL() << "a 'bert' vocabulary loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("'gpt2'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("'llama'"), std::string::npos) << e.what();
  }
}

TEST(Vocabulary, MissingTokenizerJsonIsAnError) {
  EXPECT_THROW(Vocabulary::from_tokenizer_json(reference_path("no_such_dir/tokenizer.json")), Error);
}

TEST(Vocabulary, FromTokensChecksItsArguments) {
  EXPECT_THROW(Vocabulary::from_tokens(VocabEncoding::ByteLevelBpe, {"a", "b"}, {TokenType::Normal}), Error);
  const Vocabulary vocab = Vocabulary::from_tokens(VocabEncoding::ByteLevelBpe, {"b", "a", "b", "\xC4\xA0" "a"});
  EXPECT_EQ(vocab.find_raw("b"), 0);  // a repeated string resolves to its lowest id
  EXPECT_EQ(vocab.find_raw("a"), 1);
  EXPECT_EQ(vocab.token(3).display, " a");
  EXPECT_EQ(vocab.token(3).type, TokenType::Normal);
  EXPECT_FALSE(vocab.find_raw("c").has_value());
  EXPECT_FALSE(vocab.find_raw("").has_value());
  EXPECT_THROW(vocab.token(-1), Error);
  EXPECT_THROW(vocab.token(4), Error);
}

TEST(Vocabulary, TokenTypeNames) {
  EXPECT_EQ(token_type_name(TokenType::Normal), "normal");
  EXPECT_EQ(token_type_name(TokenType::Control), "control");
  EXPECT_EQ(token_type_name(TokenType::UserDefined), "user_defined");
  EXPECT_EQ(token_type_name(TokenType::Byte), "byte");
}

}  // namespace
}  // namespace neuronlens

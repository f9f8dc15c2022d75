// Tokenizer encode and decode on Gemma 3's real vocabulary, against llama.cpp.
//
// Gemma 3 (models/gemma-3-270m-q4_k_m.gguf, scripts/fetch-multipart-model.sh
// gemma3-270m-q4_k_m) is SentencePiece with 262,144 tokens, no space prefix,
// byte fallback, single digits, and user-defined tokens for runs of spaces,
// newlines and tabs and for HTML tags, which are matched in any text before
// the merges see it. tests/fixtures/tokenizer/gemma3_reference.json holds
// llama.cpp's ids for ~110 texts (the real-vocabulary test's texts and
// Gemma-specific ones: chat turns, literal control tokens, whitespace runs,
// tags, emoji, CJK, byte fallback, digits) with special-token parsing on and
// off, and llama.cpp's decoded text; scripts/make_gemma_tokenizer_reference.py
// writes it.
//
// The vocabulary is read straight from the GGUF file (Tokenizer::from_gguf),
// not through Model::load. A missing model file skips these tests, unless
// NEURONLENS_REQUIRE_MODEL is set, which makes it a failure.
#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "neuronlens/chat_template.h"
#include "neuronlens/gguf.h"
#include "neuronlens/tokenizer.h"
#include "neuronlens/vocab.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

using Ids = std::vector<int32_t>;

const nlohmann::json& gemma_reference() {
  static const nlohmann::json document = [] {
    const auto path = std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures" / "tokenizer" /
                      "gemma3_reference.json";
    std::ifstream in(path);
    if (!in) throw std::runtime_error("cannot read " + path.string());
    return nlohmann::json::parse(in);
  }();
  return document;
}

class GemmaTokenizer : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::fetched_model_path("gemma-3-270m-q4_k_m.gguf");
    if (path_.empty()) GTEST_SKIP() << "Gemma 3 270M not fetched (scripts/fetch-multipart-model.sh gemma3-270m-q4_k_m)";
  }
  std::string path_;
};

TEST_F(GemmaTokenizer, VocabularyFacts) {
  const auto start = std::chrono::steady_clock::now();
  const GgufFile file = GgufFile::open(path_);
  const Vocabulary vocab = Vocabulary::from_gguf(file);
  const auto loaded = std::chrono::steady_clock::now();
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  const auto done = std::chrono::steady_clock::now();
  const auto ms = [](auto d) { return static_cast<int>(std::chrono::duration_cast<std::chrono::milliseconds>(d).count()); };
  RecordProperty("vocabulary_ms", ms(loaded - start));
  RecordProperty("tokenizer_ms", ms(done - loaded));

  const nlohmann::json& ref = gemma_reference();
  EXPECT_EQ(vocab.encoding(), VocabEncoding::SentencePiece);
  EXPECT_EQ(vocab.size(), ref["n_vocab"].get<int64_t>());
  EXPECT_EQ(vocab.bos_id(), ref["bos"].get<int64_t>());
  EXPECT_EQ(vocab.eos_id(), ref["eos"].get<int64_t>());
  EXPECT_EQ(tokenizer.adds_bos(), ref["add_bos"].get<bool>());
  EXPECT_EQ(tokenizer.bos_id(), 2);
  EXPECT_EQ(tokenizer.eos_id(), 1);
  EXPECT_TRUE(tokenizer.pre_tokenizer_patterns().empty());

  const auto type_of = [&](std::string_view raw) {
    const auto id = vocab.find_raw(raw);
    EXPECT_TRUE(id) << raw;
    return id ? vocab.token(*id).type : TokenType::Undefined;
  };
  EXPECT_EQ(type_of("<start_of_turn>"), TokenType::Control);
  EXPECT_EQ(type_of("<end_of_turn>"), TokenType::Control);
  EXPECT_EQ(type_of("\n"), TokenType::UserDefined);
  EXPECT_EQ(type_of("  "), TokenType::UserDefined);
  EXPECT_EQ(type_of("\t\t"), TokenType::UserDefined);
  EXPECT_EQ(type_of("<td>"), TokenType::UserDefined);
  EXPECT_EQ(type_of("<0xFF>"), TokenType::Byte);
  // A user-defined whitespace token is the text itself, not SentencePiece's '▁'.
  EXPECT_EQ(vocab.token(*vocab.find_raw("   ")).bytes, "   ");
}

TEST_F(GemmaTokenizer, EncodeMatchesLlamaCpp) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(path_));
  const auto& cases = gemma_reference().at("cases");
  ASSERT_GE(cases.size(), 100u);
  size_t tokens = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const auto& c = cases[i];
    const std::string text = c["text"].get<std::string>();
    const Ids special = c["ids_special"].get<Ids>();
    const Ids plain = c["ids_plain"].get<Ids>();
    EXPECT_EQ(tokenizer.encode(text, /*parse_special=*/true), special)
        << "text " << i << " " << ::testing::PrintToString(text) << ", special parsing on";
    EXPECT_EQ(tokenizer.encode(text, /*parse_special=*/false), plain)
        << "text " << i << " " << ::testing::PrintToString(text) << ", special parsing off";
    tokens += special.size();
  }
  RecordProperty("texts", static_cast<int>(cases.size()));
  RecordProperty("tokens", static_cast<int>(tokens));
}

TEST_F(GemmaTokenizer, DecodeRoundTrips) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(path_));
  for (const auto& c : gemma_reference().at("cases")) {
    const std::string decoded = c["decoded"].get<std::string>();
    // Without a space prefix nothing is stripped: the decoded text is the
    // text (a literal '▁' reads as a space, as in SentencePiece).
    EXPECT_EQ(tokenizer.decode(c["ids_special"].get<Ids>()), decoded) << ::testing::PrintToString(c["text"]);
    EXPECT_EQ(tokenizer.decode(c["ids_plain"].get<Ids>()), decoded) << ::testing::PrintToString(c["text"]);
  }
}

// The GGUF file has no chat template: the vocabulary's <start_of_turn> and
// <end_of_turn> make it Gemma's, and the rendered prompt is one of the
// reference texts, so its ids are llama.cpp's.
TEST_F(GemmaTokenizer, ChatTemplateFromVocabulary) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(path_));
  EXPECT_EQ(read_chat_template_source(path_), "");
  const ChatTemplate chat = ChatTemplate::require("", tokenizer.vocabulary());
  EXPECT_EQ(chat.format(), ChatFormat::Gemma);
  EXPECT_EQ(chat.stop_tokens(), (Ids{106, 1}));  // <end_of_turn>, <eos>
  const std::string prompt = chat.render(
      {{"system", "You are terse."}, {"user", "What is 2+2?"}, {"assistant", "4"}, {"user", "And 3+3?"}});
  const auto& cases = gemma_reference().at("cases");
  const auto it = std::find_if(cases.begin(), cases.end(), [&](const auto& c) { return c["text"] == prompt; });
  ASSERT_NE(it, cases.end()) << "rendered " << ::testing::PrintToString(prompt) << ", not a reference text";
  const Ids ids = tokenizer.encode(prompt, /*parse_special=*/true);
  EXPECT_EQ(ids, (*it)["ids_special"].get<Ids>());
  EXPECT_EQ(ids.front(), 2);  // the rendered <bos>: no second BOS is to be added
}

}  // namespace
}  // namespace neuronlens

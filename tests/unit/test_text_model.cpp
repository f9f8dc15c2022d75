// TextModel::load (src/runtime/text_model.cpp) parses a model once: the
// tokenizer shares the Model's vocabulary (one object, built once) and reads
// its own keys from the GgufFile the Model parsed; the chat template comes
// from the same metadata. Encoding, BOS/EOS, the pre-tokenizer and the chat
// template equal those of a tokenizer and template read from the path anew,
// as before, for a GGUF file and a Hugging Face folder.
#include <gtest/gtest.h>

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "json_fixture.h"
#include "neuronlens/chat_template.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/model.h"
#include "neuronlens/text_model.h"
#include "neuronlens/tokenizer.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

const std::vector<std::string> kTexts = {
    "Hello, world! The quick brown fox jumps over 12345 lazy dogs.",
    "  leading spaces\nnew lines\ttabs and caf\xC3\xA9 na\xC3\xAFve",
    "<|im_start|>user\nhi<|im_end|>\n<s></s>",
    "",
};

// What TextModel::with_model did before it reused the Model: a tokenizer and
// a chat template read from the path again.
Tokenizer tokenizer_read_anew(const std::string& path) {
  if (std::filesystem::is_directory(path)) {
    return Tokenizer::from_tokenizer_json((std::filesystem::path(path) / "tokenizer.json").string());
  }
  return Tokenizer::from_gguf(GgufFile::open(path));
}

void expect_shares_and_matches(const std::string& path, bool is_gguf) {
  SCOPED_TRACE(path);
  ASSERT_TRUE(std::filesystem::exists(path)) << "missing fixture " << path;
  const TextModel tm = TextModel::load(path);
  // One vocabulary: the tokenizer's is the Model's.
  EXPECT_EQ(&tm.tokenizer.vocabulary(), &tm.model.vocab());
  EXPECT_EQ(tm.model.shared_vocab().get(), &tm.model.vocab());
  if (is_gguf) {
    ASSERT_NE(tm.model.gguf(), nullptr);
    EXPECT_EQ(tm.model.gguf()->path(), path);
  } else {
    EXPECT_EQ(tm.model.gguf(), nullptr);
  }

  const Tokenizer anew = tokenizer_read_anew(path);
  EXPECT_NE(&anew.vocabulary(), &tm.model.vocab());
  EXPECT_EQ(tm.tokenizer.vocabulary().size(), anew.vocabulary().size());
  EXPECT_EQ(tm.tokenizer.adds_bos(), anew.adds_bos());
  EXPECT_EQ(tm.tokenizer.bos_id(), anew.bos_id());
  EXPECT_EQ(tm.tokenizer.eos_id(), anew.eos_id());
  EXPECT_EQ(tm.tokenizer.pre_tokenizer_patterns(), anew.pre_tokenizer_patterns());
  for (const std::string& text : kTexts) {
    for (const bool special : {false, true}) {
      const std::vector<int32_t> ids = tm.tokenizer.encode(text, special);
      EXPECT_EQ(ids, anew.encode(text, special)) << "'" << text << "' parse_special=" << special;
      EXPECT_EQ(tm.tokenizer.decode(ids), anew.decode(ids));
    }
  }

  const auto chat_anew = ChatTemplate::detect(read_chat_template_source(path), anew.vocabulary());
  ASSERT_EQ(tm.chat.has_value(), chat_anew.has_value());
  if (tm.chat) {
    EXPECT_EQ(tm.chat->format(), chat_anew->format());
    EXPECT_EQ(tm.chat->stop_tokens(), chat_anew->stop_tokens());
    const std::vector<ChatMessage> messages = {{"user", "Hi there"}};
    EXPECT_EQ(tm.chat->render(messages), chat_anew->render(messages));
  }
  EXPECT_EQ(tm.prompt_tokens("Hello", false), [&] {
    std::vector<int32_t> ids;
    if (anew.adds_bos() && anew.bos_id()) ids.push_back(*anew.bos_id());
    const auto body = anew.encode("Hello", false);
    ids.insert(ids.end(), body.begin(), body.end());
    return ids;
  }());
}

TEST(TextModel, GgufSharesTheModelsVocabulary) {
  expect_shares_and_matches(testing::fixture_path("tiny_llama.gguf"), true);
}

TEST(TextModel, HuggingFaceFolderSharesTheModelsVocabulary) {
  expect_shares_and_matches(testing::fixture_path("tiny_llama_hf"), false);
}

TEST(TextModel, CommittedQwen3SharesTheModelsVocabulary) {
  expect_shares_and_matches(testing::committed_fixture("families/qwen3/model.gguf"), true);
  expect_shares_and_matches(testing::committed_fixture("families/qwen3/hf"), false);
}

TEST(TextModel, TinyLlamaHasItsChatTemplateFromTheParsedMetadata) {
  const std::string gguf = testing::fixture_path("tiny_llama.gguf");
  const TextModel tm = TextModel::load(gguf);
  ASSERT_NE(tm.model.gguf(), nullptr);
  EXPECT_EQ(read_chat_template_source(*tm.model.gguf()), read_chat_template_source(gguf));
  EXPECT_FALSE(read_chat_template_source(*tm.model.gguf()).empty());
  EXPECT_TRUE(tm.chat.has_value());
}

TEST(TextModel, WithModelAtItsOwnPathSharesElseReadsThePathAnew) {
  const std::string gguf = testing::fixture_path("tiny_llama.gguf");
  const TextModel same = TextModel::with_model(Model::load(gguf), gguf);
  EXPECT_EQ(&same.tokenizer.vocabulary(), &same.model.vocab());
  // Another path (the tied fixture has the same tokenizer): read from there.
  const std::string other = testing::fixture_path("tiny_llama_tied.gguf");
  const TextModel elsewhere = TextModel::with_model(Model::load(gguf), other);
  EXPECT_NE(&elsewhere.tokenizer.vocabulary(), &elsewhere.model.vocab());
  EXPECT_EQ(elsewhere.tokenizer.encode(kTexts[0], false), same.tokenizer.encode(kTexts[0], false));
}

TEST(TextModel, TokenizerAroundAVocabularyKeepsItAlive) {
  const std::string gguf = testing::fixture_path("tiny_llama.gguf");
  std::optional<Tokenizer> tokenizer;
  const Vocabulary* vocab = nullptr;
  {
    const Model model = Model::load(gguf);
    vocab = &model.vocab();
    tokenizer.emplace(Tokenizer::from_gguf(*model.gguf(), model.shared_vocab()));
  }
  EXPECT_EQ(&tokenizer->vocabulary(), vocab);
  const std::vector<int32_t> ids = tokenizer->encode(kTexts[0], false);
  EXPECT_EQ(ids, Tokenizer::from_gguf(GgufFile::open(gguf)).encode(kTexts[0], false));
  EXPECT_THROW(Tokenizer::from_gguf(GgufFile::open(gguf), nullptr), Error);
  EXPECT_THROW(Tokenizer::from_tokenizer_json(testing::fixture_path("tiny_llama_hf/tokenizer.json"), nullptr), Error);
}

}  // namespace
}  // namespace neuronlens

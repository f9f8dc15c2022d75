// Chat templates (src/tokenizer/chat_template.cpp): the default model's
// template rendered like jinja2 does (scripts/make_chat_reference.py,
// committed under tests/fixtures/chat/), the tiny fixture's, Llama 3, and
// models without a template.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "neuronlens/chat_template.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/vocab.h"
#include "test_paths.h"

namespace neuronlens {
namespace {

std::string committed_fixture(const std::string& name) {
  return (std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures" / name).string();
}

TEST(ChatTemplate, SmolLM2MatchesJinja) {
  NEURONLENS_REQUIRE_DEFAULT_MODEL(model_path);
  std::ifstream in(committed_fixture("chat/smollm2_reference.json"));
  ASSERT_TRUE(in) << "missing tests/fixtures/chat/smollm2_reference.json";
  const nlohmann::json ref = nlohmann::json::parse(in);
  const std::string source = read_chat_template_source(model_path);
  EXPECT_EQ(source, ref["template"].get<std::string>());
  const Vocabulary vocab = Vocabulary::from_gguf(GgufFile::open(model_path));
  const ChatTemplate t = ChatTemplate::require(source, vocab);
  EXPECT_EQ(t.format(), ChatFormat::ChatML);
  EXPECT_EQ(t.default_system_prompt(), "You are a helpful AI assistant named SmolLM, trained by Hugging Face");
  EXPECT_EQ(t.stop_tokens(), (std::vector<int32_t>{2}));  // <|im_end|> is also SmolLM2's EOS
  ASSERT_GE(ref["cases"].size(), 6u);
  for (const auto& c : ref["cases"]) {
    std::vector<ChatMessage> messages;
    for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
    EXPECT_EQ(t.render(messages, c["add_generation_prompt"].get<bool>()), c["rendered"].get<std::string>())
        << c["name"];
  }
}

TEST(ChatTemplate, TinyFixtureIsChatMLWithoutDefaultSystem) {
  const std::string path = testing::fixture_path("tiny_llama.gguf");
  const Vocabulary vocab = Vocabulary::from_gguf(GgufFile::open(path));
  const ChatTemplate t = ChatTemplate::require(read_chat_template_source(path), vocab);
  EXPECT_EQ(t.format(), ChatFormat::ChatML);
  EXPECT_EQ(t.default_system_prompt(), "");
  EXPECT_EQ(t.render({{"user", "hi"}}), "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
  EXPECT_EQ(t.stop_tokens().front(), static_cast<int32_t>(*vocab.find_raw("<|im_end|>")));
}

Vocabulary llama3_vocab() {
  return Vocabulary::from_tokens(VocabEncoding::ByteLevelBpe,
                                 {"a", "<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                                  "<|end_header_id|>", "<|eot_id|>"},
                                 {TokenType::Normal, TokenType::Control, TokenType::Control, TokenType::Control,
                                  TokenType::Control, TokenType::Control});
}

TEST(ChatTemplate, Llama3) {
  const Vocabulary vocab = llama3_vocab();
  const std::string source =
      "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
      "message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}...";
  for (const std::string& s : {source, std::string()}) {
    const ChatTemplate t = ChatTemplate::require(s, vocab);
    EXPECT_EQ(t.format(), ChatFormat::Llama3);
    EXPECT_EQ(t.render({{"system", "Be brief."}, {"user", " Hi \n"}}),
              "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
              "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
              "<|start_header_id|>assistant<|end_header_id|>\n\n");
    EXPECT_EQ(t.stop_tokens(), (std::vector<int32_t>{5}));
  }
}

TEST(ChatTemplate, UnknownTemplateIsAnError) {
  const Vocabulary plain = Vocabulary::from_tokens(VocabEncoding::ByteLevelBpe, {"a", "b"});
  EXPECT_FALSE(ChatTemplate::detect("", plain));
  EXPECT_FALSE(ChatTemplate::detect("{{ messages[0]['content'] }}", llama3_vocab()));
  try {
    ChatTemplate::require("", plain);
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("this model has no chat template neuronlens knows"), std::string::npos);
  }
}

}  // namespace
}  // namespace neuronlens

// Chat templates (src/tokenizer/chat_template.cpp): the default model's
// template rendered like jinja2 does (scripts/make_chat_reference.py,
// committed under tests/fixtures/chat/), the tiny fixture's, Llama 3, and
// models without a template; Gemma 3, Phi-3 (three versions) and Qwen3
// against their Hugging Face templates rendered by jinja2
// (scripts/make_chat_family_reference.py, tests/fixtures/chat/families_reference.json).
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "neuronlens/chat_template.h"
#include "neuronlens/error.h"
#include "neuronlens/gguf.h"
#include "neuronlens/vocab.h"
#include "scratch_dir.h"
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

const nlohmann::json& family_reference() {
  static const nlohmann::json document = [] {
    std::ifstream in(committed_fixture("chat/families_reference.json"));
    if (!in) throw std::runtime_error("missing tests/fixtures/chat/families_reference.json");
    return nlohmann::json::parse(in);
  }();
  return document;
}

std::vector<ChatMessage> messages_of(const nlohmann::json& c) {
  std::vector<ChatMessage> messages;
  for (const auto& m : c["messages"]) messages.push_back({m["role"], m["content"]});
  return messages;
}

// Every case of one template in the reference: the same text as jinja2, or an
// Error where the template raises.
void expect_renders_like_jinja(const ChatTemplate& t, const std::string& name) {
  const auto& cases = family_reference()["templates"][name]["cases"];
  ASSERT_GE(cases.size(), 20u) << name;
  for (const auto& c : cases) {
    const std::string what = name + ": " + c["name"].get<std::string>() +
                             (c["add_generation_prompt"].get<bool>() ? " (generation prompt)" : "");
    const std::vector<ChatMessage> messages = messages_of(c);
    const bool prompt = c["add_generation_prompt"].get<bool>();
    if (c.contains("error")) {
      EXPECT_THROW(t.render(messages, prompt), Error) << what;
    } else {
      EXPECT_EQ(t.render(messages, prompt), c["rendered"].get<std::string>()) << what;
    }
  }
}

Vocabulary control_vocab(VocabEncoding encoding, std::vector<std::string> tokens) {
  std::vector<TokenType> types(tokens.size(), TokenType::Control);
  types[0] = TokenType::Normal;
  return Vocabulary::from_tokens(encoding, std::move(tokens), std::move(types));
}

Vocabulary gemma_vocab() {
  return control_vocab(VocabEncoding::SentencePiece,
                       {"a", "<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>"});
}

Vocabulary phi3_vocab() {
  return control_vocab(VocabEncoding::SentencePiece, {"a", "<unk>", "<s>", "</s>", "<|endoftext|>", "<|assistant|>",
                                                      "<|end|>", "<|user|>", "<|system|>"});
}

TEST(ChatTemplate, GemmaMatchesJinja) {
  const std::string source = family_reference()["templates"]["gemma3"]["template"];
  const ChatTemplate t = ChatTemplate::require(source, gemma_vocab());
  EXPECT_EQ(t.format(), ChatFormat::Gemma);
  EXPECT_EQ(chat_format_name(t.format()), "gemma");
  EXPECT_EQ(t.stop_tokens(), (std::vector<int32_t>{5}));  // <end_of_turn>; this vocabulary names no EOS
  expect_renders_like_jinja(t, "gemma3");
}

TEST(ChatTemplate, GemmaFromVocabularyAlone) {
  // Gemma's GGUF files carry no chat template: the turn tokens decide.
  const ChatTemplate t = ChatTemplate::require("", gemma_vocab());
  EXPECT_EQ(t.format(), ChatFormat::Gemma);
  expect_renders_like_jinja(t, "gemma3");
  EXPECT_EQ(t.render({{"system", "Be brief."}, {"user", " Hi "}, {"assistant", "Hello"}, {"user", "Bye"}}),
            "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello<end_of_turn>\n"
            "<start_of_turn>user\nBye<end_of_turn>\n<start_of_turn>model\n");
  try {
    t.render({{"user", "one"}, {"user", "two"}});
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()),
              "chat (Gemma): conversation roles must alternate user/assistant/user/assistant/...; message 2 is 'user'");
  }
}

TEST(ChatTemplate, Phi3MatchesJinja) {
  const auto& templates = family_reference()["templates"];
  for (const std::string name : {"phi3", "phi3.5", "phi3-original", "phi3-original-no-bos"}) {
    const ChatTemplate t = ChatTemplate::require(templates[name]["template"].get<std::string>(), phi3_vocab());
    EXPECT_EQ(t.format(), ChatFormat::Phi3) << name;
    EXPECT_EQ(t.stop_tokens(), (std::vector<int32_t>{6})) << name;  // <|end|>
    expect_renders_like_jinja(t, name);
  }
  // From the vocabulary alone: the current template.
  expect_renders_like_jinja(ChatTemplate::require("", phi3_vocab()), "phi3");
}

TEST(ChatTemplate, Qwen3IsChatMLWithThinkBlocks) {
  const Vocabulary vocab = control_vocab(VocabEncoding::ByteLevelBpe,
                                         {"a", "<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>"});
  const ChatTemplate t = ChatTemplate::require(family_reference()["templates"]["qwen3"]["template"].get<std::string>(),
                                               vocab);
  EXPECT_EQ(t.format(), ChatFormat::ChatML);
  EXPECT_EQ(t.default_system_prompt(), "");
  EXPECT_EQ(t.stop_tokens(), (std::vector<int32_t>{3}));
  expect_renders_like_jinja(t, "qwen3");
}

// The first Phi-3 template, as llama.cpp's Phi-3 vocabulary file stores it,
// with that file's BOS and EOS.
TEST(ChatTemplate, Phi3VocabularyFile) {
  const char* dir = std::getenv("NEURONLENS_VOCABS");
  const std::filesystem::path path = std::filesystem::path(dir ? dir : NEURONLENS_TEST_VOCABS) / "ggml-vocab-phi-3.gguf";
  if (!std::filesystem::exists(path)) {
    if (std::getenv("NEURONLENS_REQUIRE_MODEL")) FAIL() << path << " missing (run scripts/fetch-vocabs.sh)";
    GTEST_SKIP() << path << " missing (run scripts/fetch-vocabs.sh)";
  }
  const std::string source = read_chat_template_source(path.string());
  EXPECT_EQ(source, family_reference()["templates"]["phi3-original"]["template"].get<std::string>());
  const Vocabulary vocab = Vocabulary::from_gguf(GgufFile::open(path.string()));
  const ChatTemplate t = ChatTemplate::require(source, vocab);
  EXPECT_EQ(t.format(), ChatFormat::Phi3);
  EXPECT_EQ(t.stop_tokens(), (std::vector<int32_t>{32007, 32000}));  // <|end|>, EOS <|endoftext|>
  expect_renders_like_jinja(t, "phi3-original");
}

// tokenizer_config.json is as hostile as the weights: a chat_template nested
// 65536 deep (it used to overflow the stack) is a bad file, not a crash.
TEST(ChatTemplate, DeeplyNestedTokenizerConfigIsABadFile) {
  testing::ScratchDir dir;
  const std::string config = dir.file("tokenizer_config.json");
  std::ofstream(config) << "{\"chat_template\": " << std::string(65536, '[') << std::string(65536, ']') << "}";
  try {
    read_chat_template_source(std::filesystem::path(config).parent_path().string());
    ADD_FAILURE() << "read without error";
  } catch (const Error& e) {
    EXPECT_EQ(std::string(e.what()), config + ": JSON nested deeper than 256 levels of arrays and objects");
    EXPECT_EQ(e.kind(), ErrorKind::BadFile);
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
    EXPECT_EQ(std::string(e.what()),
              "this model has no chat template neuronlens knows (supported: ChatML, Llama 3, Gemma, Phi-3)");
  }
}

}  // namespace
}  // namespace neuronlens

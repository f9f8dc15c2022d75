// Tokenizer encode on real vocabularies, against Hugging Face `tokenizers`.
//
// scripts/fetch-vocabs.sh puts llama.cpp's vocab-only GGUF files into
// models/vocabs/ (Llama 3 "llama-bpe", Qwen2, Llama 2 "llama-spm", Phi-3,
// GPT-2, StarCoder), each with a .inp file of texts and a .out file of the
// ids Hugging Face's tokenizer gives for them. Each file is loaded with
// Tokenizer::from_gguf, so its pre-tokenizer comes from its own metadata
// (tokenizer.ggml.model, tokenizer.ggml.pre), and every text must encode to
// the reference ids and decode back to itself.
//
// tests/fixtures/tokenizer/real_vocab_reference.json adds texts the .inp
// files lack (scripts, digits of other scripts, whitespace runs, code, emoji
// sequences, literal special tokens) with the ids and decoded text Hugging
// Face gives for them, written by scripts/make_real_vocab_reference.py from
// the same GGUF files rebuilt as each model's tokenizer.json (checked there
// against the .out files first).
//
// A missing folder skips these tests, unless NEURONLENS_REQUIRE_MODEL is set
// (scripts/test.sh sets it), which makes it a failure.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "neuronlens/gguf.h"
#include "neuronlens/tokenizer.h"
#include "tokenizer/pretokenizer.h"

namespace neuronlens {
namespace {

using Ids = std::vector<int32_t>;

struct RealVocab {
  const char* name;  // models/vocabs/ggml-vocab-<name>.gguf
  VocabEncoding encoding;
  const char* pre;   // tokenizer.ggml.pre the file must carry (byte-level only)
  int64_t size;
};

const RealVocab kRealVocabs[] = {
    {"llama-bpe", VocabEncoding::ByteLevelBpe, "llama-bpe", 128256},
    {"qwen2", VocabEncoding::ByteLevelBpe, "qwen2", 151936},
    {"llama-spm", VocabEncoding::SentencePiece, "", 32000},
    {"phi-3", VocabEncoding::SentencePiece, "", 32064},
    {"gpt-2", VocabEncoding::ByteLevelBpe, "gpt-2", 50257},
    {"starcoder", VocabEncoding::ByteLevelBpe, "starcoder", 49152},
};

std::filesystem::path vocab_dir() {
  const char* dir = std::getenv("NEURONLENS_VOCABS");
  return dir ? dir : NEURONLENS_TEST_VOCABS;
}

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path.string());
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

struct Case {
  std::string text;
  Ids ids;
};

// llama.cpp's test-tokenizer-0 format: texts separated by
// "\n__ggml_vocab_test__\n" (one after the last text too); one line of
// space-separated ids per text.
std::vector<Case> read_cases(const std::filesystem::path& gguf) {
  const std::string inp = read_file(gguf.string() + ".inp");
  const std::string out = read_file(gguf.string() + ".out");
  const std::string separator = "\n__ggml_vocab_test__\n";
  std::vector<Case> cases;
  for (size_t pos = 0; pos < inp.size();) {
    size_t next = inp.find(separator, pos);
    if (next == std::string::npos) next = inp.size();
    cases.push_back(Case{inp.substr(pos, next - pos), {}});
    pos = next == inp.size() ? next : next + separator.size();
  }
  std::istringstream lines(out);
  std::string line;
  size_t index = 0;
  for (; std::getline(lines, line); ++index) {
    if (index >= cases.size()) throw std::runtime_error(gguf.string() + ".out has more lines than .inp has texts");
    std::istringstream numbers(line);
    for (int32_t id = 0; numbers >> id;) cases[index].ids.push_back(id);
  }
  if (index != cases.size()) throw std::runtime_error(gguf.string() + ".out has fewer lines than .inp has texts");
  return cases;
}

class RealVocabulary : public ::testing::TestWithParam<RealVocab> {
 protected:
  void SetUp() override {
    path_ = vocab_dir() / ("ggml-vocab-" + std::string(GetParam().name) + ".gguf");
    if (!std::filesystem::exists(path_)) {
      if (std::getenv("NEURONLENS_REQUIRE_MODEL")) FAIL() << path_ << " missing (run scripts/fetch-vocabs.sh)";
      GTEST_SKIP() << path_ << " missing (run scripts/fetch-vocabs.sh)";
    }
  }
  std::filesystem::path path_;
};

TEST_P(RealVocabulary, PreTokenizerComesFromMetadata) {
  const RealVocab& vocab = GetParam();
  const GgufFile file = GgufFile::open(path_.string());
  const Tokenizer tokenizer = Tokenizer::from_gguf(file);
  EXPECT_EQ(tokenizer.vocabulary().size(), vocab.size);
  EXPECT_EQ(tokenizer.vocabulary().encoding(), vocab.encoding);
  if (vocab.encoding == VocabEncoding::SentencePiece) {
    EXPECT_EQ(file.get_string_or("tokenizer.ggml.model", ""), "llama");
    EXPECT_TRUE(tokenizer.pre_tokenizer_patterns().empty());
  } else {
    EXPECT_EQ(file.get_string_or("tokenizer.ggml.model", ""), "gpt2");
    EXPECT_EQ(file.get_string_or("tokenizer.ggml.pre", ""), vocab.pre);
    EXPECT_EQ(tokenizer.pre_tokenizer_patterns(), PreTokenizer::patterns_for_gguf_pre(vocab.pre));
  }
}

TEST_P(RealVocabulary, EncodeMatchesHuggingFace) {
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(path_.string()));
  const std::vector<Case> cases = read_cases(path_);
  ASSERT_GE(cases.size(), 40u);
  size_t tokens = 0;
  for (size_t i = 0; i < cases.size(); ++i) {
    const Case& c = cases[i];
    // HF encode(add_special_tokens=False) still parses added tokens in the text.
    const Ids got = tokenizer.encode(c.text, /*parse_special=*/true);
    EXPECT_EQ(got, c.ids) << GetParam().name << ": text " << i << " " << ::testing::PrintToString(c.text);
    EXPECT_EQ(tokenizer.decode(got), c.text) << GetParam().name << ": text " << i;
    tokens += c.ids.size();
  }
  RecordProperty("texts", static_cast<int>(cases.size()));
  RecordProperty("tokens", static_cast<int>(tokens));
}

const nlohmann::json& extra_reference() {
  static const nlohmann::json document = nlohmann::json::parse(read_file(
      std::filesystem::path(__FILE__).parent_path().parent_path() / "fixtures" / "tokenizer" /
      "real_vocab_reference.json"));
  return document;
}

TEST_P(RealVocabulary, ExtraTextsMatchHuggingFace) {
  const auto& vocabs = extra_reference().at("vocabs");
  if (!vocabs.contains(GetParam().name)) GTEST_SKIP() << "no extra texts for " << GetParam().name;
  const auto& reference = vocabs.at(GetParam().name);
  const Tokenizer tokenizer = Tokenizer::from_gguf(GgufFile::open(path_.string()));
  const auto& texts = reference.at("texts");
  ASSERT_EQ(texts.size(), reference.at("ids").size());
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::string text = texts[i].get<std::string>();
    const Ids got = tokenizer.encode(text, /*parse_special=*/true);
    EXPECT_EQ(got, reference["ids"][i].get<Ids>())
        << GetParam().name << ": text " << i << " " << ::testing::PrintToString(text);
    EXPECT_EQ(tokenizer.decode(got), reference["decoded"][i].get<std::string>()) << GetParam().name << ": text " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(Tokenizer, RealVocabulary, ::testing::ValuesIn(kRealVocabs),
                         [](const ::testing::TestParamInfo<RealVocab>& param_info) {
                           std::string name = param_info.param.name;
                           for (char& c : name) {
                             if (c == '-') c = '_';
                           }
                           return name;
                         });

}  // namespace
}  // namespace neuronlens

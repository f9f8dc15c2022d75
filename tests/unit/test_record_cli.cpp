// `neuronlens record` on the tiny fixture model: a plain-text corpus with
// bytes that are not UTF-8 and a JSONL corpus are recorded, `show` prints
// the contexts (and --json gives them with each token's activation, the
// firing token's equal to the library's), a second run resumes to "nothing
// to do"; bad input (an empty corpus, a JSONL line without text, a missing
// file, an atlas of another model, other options on a recorded atlas) ends
// in exit 2 with a message.
#include <gtest/gtest.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "neuronlens/atlas.h"
#include "scratch_dir.h"
#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

std::string cli(const std::string& args) { return testing::cli_path() + " " + args; }

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

void expect_error(const std::string& args, const std::string& message) {
  std::string out;
  EXPECT_EQ(testing::run_command(cli(args), out), 2) << args << "\n" << out;
  EXPECT_NE(out.find(message), std::string::npos) << args << "\n" << out;
}

const std::string kText =
    "The dog barked at the cat. The cat sat on the mat, and the dog slept by the door.\n"
    "Numbers: 12 + 30 = 42. Bytes that are not UTF-8: \xff\xfe\xc3( and a lone \xed\xa0\x80 surrogate.\n"
    "def f(x):\n    return x * 2  # code\n";

TEST(RecordCli, RecordsShowsAndResumes) {
  testing::ScratchDir dir;
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const std::string corpus = dir.file("corpus.txt"), jsonl = dir.file("more.jsonl"), atlas = dir.file("a.db");
  write_file(corpus, kText + kText);
  write_file(jsonl, "{\"text\": \"the dog and the cat\", \"source\": \"x\"}\n\n{\"text\": \"a second document\"}\n");
  const std::string record = "record " + model + " --corpus " + corpus + " " + jsonl + " -o " + atlas +
                             " --seq-len 16 --contexts 3 --window 2";
  std::string out;
  ASSERT_EQ(testing::run_command(cli(record), out), 0) << out;
  EXPECT_NE(out.find("recorded "), std::string::npos) << out;

  const Atlas a = Atlas::open(atlas);
  const std::optional<RecordInfo> info = a.record_info();
  ASSERT_TRUE(info);
  EXPECT_TRUE(info->complete());
  ASSERT_EQ(info->files.size(), 2u);
  EXPECT_EQ(info->files[0].name, "corpus.txt");
  EXPECT_EQ(info->files[0].bytes, static_cast<int64_t>(2 * kText.size()));
  EXPECT_EQ(info->files[1].documents, 2);
  EXPECT_EQ(info->contexts, 3);
  EXPECT_EQ(info->seq_len, 16);

  std::string shown;
  ASSERT_EQ(testing::run_command(cli("show " + atlas + " 1:gate:5"), shown), 0) << shown;
  EXPECT_NE(shown.find("top positive contexts:"), std::string::npos) << shown;
  EXPECT_NE(shown.find("[["), std::string::npos) << shown;

  std::string json_text;
  ASSERT_EQ(testing::run_command(cli("show --json " + atlas + " 1:up:5 --contexts 2"), json_text, false), 0);
  const nlohmann::json j = nlohmann::json::parse(json_text);  // valid UTF-8 throughout
  const nlohmann::json& evidence = j.at(0).at("evidence");
  const NeuronEvidence e = *a.neuron_evidence(1, 5);
  EXPECT_NEAR(evidence.at("stats").at("max_abs").get<double>(), e.stats.max_abs, 1e-9);
  ASSERT_EQ(evidence.at("positive").size(), std::min<size_t>(2, e.positive.size()));
  for (size_t r = 0; r < evidence.at("positive").size(); ++r) {
    int fired = 0;
    for (const auto& t : evidence.at("positive")[r].at("tokens")) {
      if (t.at("fired").get<bool>()) {
        ++fired;
        EXPECT_EQ(t.at("activation").get<float>(), e.positive[r].activation);
      }
    }
    EXPECT_EQ(fired, 1);
  }

  ASSERT_EQ(testing::run_command(cli(record), out), 0) << out;
  EXPECT_NE(out.find("nothing to do"), std::string::npos) << out;
  expect_error(record.substr(0, record.find(" --contexts")) + " --contexts 4", "another corpus or other options");
}

TEST(RecordCli, BadInputIsExit2WithAMessage) {
  testing::ScratchDir dir;
  const std::string model = testing::fixture_path("tiny_llama.gguf");
  const std::string empty = dir.file("empty.txt"), bad_jsonl = dir.file("bad.jsonl"), text = dir.file("t.txt");
  write_file(empty, "");
  write_file(bad_jsonl, "{\"text\": \"fine\"}\n{\"title\": \"no text\"}\n");
  write_file(text, kText);
  expect_error("record " + model + " --corpus " + empty + " -o " + dir.file("a.db"), "no text to record");
  expect_error("record " + model + " --corpus " + bad_jsonl + " -o " + dir.file("b.db"),
               "bad.jsonl line 2: expected an object with a string \"text\"");
  expect_error("record " + model + " --corpus " + dir.file("missing.txt") + " -o " + dir.file("c.db"),
               "no such file");
  expect_error("record " + model + " --corpus " + text + " -o " + dir.file("d.db") + " --seq-len 1", "--seq-len");
  expect_error("record " + model + " --corpus " + text + " -o " + dir.file("e.db") + " --contexts 0", "--contexts");
  // An atlas of another model.
  std::string out;
  const std::string other = dir.file("other.db");
  ASSERT_EQ(testing::run_command(
                cli("record " + testing::fixture_path("tiny_qwen2.gguf") + " --corpus " + text + " -o " + other), out),
            0)
      << out;
  expect_error("record " + model + " --corpus " + text + " -o " + other, "this atlas was made with model");
}

}  // namespace
}  // namespace neuronlens

// `neuronlens probe --show-neuron L:I` (tools/cli/cmd_probe.cpp): prints the
// neuron's MLP post-activation at each prompt token (text and JSON), and
// exits 2 with a message for a neuron outside the model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <string>

#include "test_paths.h"
#include "test_process.h"

namespace neuronlens {
namespace {

std::string cli(const std::string& args) { return testing::cli_path() + " " + args; }

TEST(ActivationsCli, ShowNeuronPrintsOneActivationPerPromptToken) {
  std::string out;
  const int rc = testing::run_command(
      cli("probe '" + testing::default_model_path() + "' -p 'The dog barked.' --tokens ' dog' --show-neuron 29:808"),
      out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("neuron 29:808 activation"), std::string::npos) << out;
  EXPECT_NE(out.find("max |activation|:"), std::string::npos) << out;

  std::string json_out;
  ASSERT_EQ(testing::run_command(cli("probe '" + testing::default_model_path() +
                                     "' -p 'The dog barked.' --tokens ' dog' --show-neuron 29:808 --json"),
                                 json_out, false),
            0);
  const auto j = nlohmann::json::parse(json_out);
  ASSERT_EQ(j["neurons"].size(), 1u);
  const auto& n = j["neurons"][0];
  EXPECT_EQ(n["layer"], 29);
  EXPECT_EQ(n["neuron"], 808);
  EXPECT_EQ(n["activations"].size(), j["prompt_tokens"].get<size_t>());
  double max_abs = 0;
  for (const auto& a : n["activations"]) {
    ASSERT_TRUE(a["activation"].is_number());
    max_abs = std::max(max_abs, std::abs(a["activation"].get<double>()));
  }
  EXPECT_DOUBLE_EQ(n["max_abs"].get<double>(), max_abs);
}

TEST(ActivationsCli, ShowNeuronOutOfRangeExitsTwo) {
  for (const std::string bad : {"29:999999", "999:1", "29", "x:1"}) {
    std::string out;
    const int rc = testing::run_command(
        cli("probe '" + testing::default_model_path() + "' -p 'Hi' --tokens ' dog' --show-neuron " + bad), out);
    EXPECT_EQ(rc, 2) << bad << ": " << out;
    EXPECT_NE(out.find("--show-neuron"), std::string::npos) << bad << ": " << out;
  }
}

}  // namespace
}  // namespace neuronlens

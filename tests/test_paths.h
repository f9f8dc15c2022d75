// Where the tests find generated fixtures, the default model and the CLI: the
// paths CMake compiled in, or the environment variables of the same names. A test that needs a file that is missing fails, unless the file
// is the default model and NEURONLENS_REQUIRE_MODEL is unset (a developer who
// has not run scripts/fetch-model.sh), in which case it is skipped.
#pragma once

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <string>

namespace neuronlens::testing {

inline std::string fixture_dir() {
  const char* dir = std::getenv("NEURONLENS_FIXTURES");
  return dir ? dir : NEURONLENS_TEST_FIXTURES;
}

inline std::string fixture_path(const std::string& name) { return fixture_dir() + "/" + name; }

inline std::string cli_path() {
  const char* cli = std::getenv("NEURONLENS_CLI");
  return cli ? cli : NEURONLENS_TEST_CLI;
}

// Path of the default model, or "" when it is absent and not required.
inline std::string default_model_path() {
  const char* p = std::getenv("NEURONLENS_DEFAULT_MODEL");
  std::string path = p ? p : NEURONLENS_TEST_DEFAULT_MODEL;
  if (std::filesystem::exists(path)) return path;
  if (std::getenv("NEURONLENS_REQUIRE_MODEL")) {
    ADD_FAILURE() << "default model missing at " << path << " (run scripts/fetch-model.sh)";
  }
  return "";
}

}  // namespace neuronlens::testing

#define NEURONLENS_REQUIRE_DEFAULT_MODEL(var)                                   \
  const std::string var = ::neuronlens::testing::default_model_path();           \
  if (var.empty()) GTEST_SKIP() << "default model not fetched (scripts/fetch-model.sh)"

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

// Path of a model fetched by scripts/fetch-multipart-model.sh into models/
// (`file` its name there), or "" when it is absent and not required
// (NEURONLENS_REQUIRE_MODEL unset).
inline std::string fetched_model_path(const std::string& file) {
  const std::filesystem::path default_model = NEURONLENS_TEST_DEFAULT_MODEL;
  const std::string path = (default_model.parent_path() / file).string();
  if (std::filesystem::exists(path)) return path;
  if (std::getenv("NEURONLENS_REQUIRE_MODEL")) {
    ADD_FAILURE() << file << " missing at " << path << " (run scripts/fetch-multipart-model.sh)";
  }
  return "";
}

}  // namespace neuronlens::testing

// Qwen2.5-Coder-1.5B-Instruct Q4_K_M: the real K-quant model.
#define NEURONLENS_REQUIRE_QWEN_MODEL(var)                                                                   \
  const std::string var = ::neuronlens::testing::fetched_model_path("qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"); \
  if (var.empty()) GTEST_SKIP() << "Qwen2.5-Coder-1.5B Q4_K_M not fetched (scripts/fetch-multipart-model.sh)"

#define NEURONLENS_REQUIRE_GEMMA3_MODEL(var)                                                       \
  const std::string var = ::neuronlens::testing::fetched_model_path("gemma-3-270m-q4_k_m.gguf");   \
  if (var.empty()) GTEST_SKIP() << "Gemma 3 270M Q4_K_M not fetched (scripts/fetch-multipart-model.sh)"

#define NEURONLENS_REQUIRE_DEFAULT_MODEL(var)                                   \
  const std::string var = ::neuronlens::testing::default_model_path();           \
  if (var.empty()) GTEST_SKIP() << "default model not fetched (scripts/fetch-model.sh)"

// A temporary folder for a test's files, removed when it goes. Named after the
// running test (or "suite" in SetUpTestSuite), the process and a counter, so
// parallel CTest processes and several folders in one test never collide.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>
#include <system_error>

namespace neuronlens::testing {

class ScratchDir {
 public:
  ScratchDir() {
    const ::testing::TestInfo* info = ::testing::UnitTest::GetInstance()->current_test_info();
    const std::string test = info ? std::string(info->test_suite_name()) + "_" + info->name() : "suite";
    path_ = std::filesystem::temp_directory_path() /
            ("neuronlens_" + test + "_" + std::to_string(::getpid()) + "_" + std::to_string(next_id()++));
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  static int& next_id() {
    static int id = 0;
    return id;
  }
  std::filesystem::path path_;
};

}  // namespace neuronlens::testing

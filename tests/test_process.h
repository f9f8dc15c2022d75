// Running a command (the CLI) from a test.
#pragma once

#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace neuronlens::testing {

// Runs `command` through the shell; `output` gets its stdout, and its stderr
// too when `with_stderr`. Returns the exit code, or -1 if it did not exit.
inline int run_command(const std::string& command, std::string& output, bool with_stderr = true) {
  FILE* pipe = ::popen((command + (with_stderr ? " 2>&1" : " 2>/dev/null")).c_str(), "r");
  if (pipe == nullptr) return -1;
  char buffer[4096];
  size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) output.append(buffer, n);
  const int status = ::pclose(pipe);
  return status != -1 && WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

}  // namespace neuronlens::testing

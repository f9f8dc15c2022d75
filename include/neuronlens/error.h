// The one error type for anything a user can trigger: a bad model file, a bad
// argument, a bad request. Internal invariants use assert(); everything that
// depends on input throws neuronlens::Error with a message that names the file
// or argument, what was expected and what was found.
#pragma once

#include <stdexcept>
#include <string>

namespace neuronlens {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

}  // namespace neuronlens

// The one error type for anything a user can trigger: a bad model file, a bad
// argument, a bad request. Internal invariants use assert(); everything that
// depends on input throws neuronlens::Error with a message that names the file
// or argument, what was expected and what was found.
//
// Every Error says whose fault it is, so that a front end can answer in kind:
//   BadInput  - an argument, option or request the caller can fix
//               (CLI exit 2, HTTP 400);
//   BadFile   - a model, atlas, vocabulary or corpus file that is malformed,
//               truncated or unsupported (CLI exit 2, HTTP 422);
//   Internal  - neuronlens itself failed: a broken invariant, an exception
//               caught where none should come from (CLI exit 1, HTTP 500).
#pragma once

#include <stdexcept>
#include <string>

namespace neuronlens {

enum class ErrorKind { BadInput, BadFile, Internal };

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}

  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

// Shorthands that read well at a throw site: throw bad_file(path + ": ...").
inline Error bad_input(const std::string& message) { return Error(ErrorKind::BadInput, message); }
inline Error bad_file(const std::string& message) { return Error(ErrorKind::BadFile, message); }
inline Error internal_error(const std::string& message) { return Error(ErrorKind::Internal, message); }

}  // namespace neuronlens

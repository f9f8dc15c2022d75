// How a request fails: a RequestError carries the HTTP status it answers
// with (400 bad parameter, 404 not found, 405, 409 missing model, 429 busy).
// It is a neuronlens::Error like every user-facing failure; any other
// neuronlens::Error escaping a handler (a bad concept, a prompt too long for
// the context) answers 400.
#pragma once

#include <string>

#include "neuronlens/error.h"

namespace neuronlens::server {

class RequestError : public Error {
 public:
  RequestError(int status, const std::string& message) : Error(ErrorKind::BadInput, message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

[[noreturn]] inline void bad_request(const std::string& message) { throw RequestError(400, message); }
[[noreturn]] inline void not_found(const std::string& message) { throw RequestError(404, message); }

}  // namespace neuronlens::server

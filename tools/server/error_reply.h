// What a failed request tells the client: the HTTP status, chosen by whose
// fault the failure is, and a message that gives away none of the server's
// own file paths. The router, and a stream that fails after its headers are
// sent, both answer through error_reply, so every error body is made here.
#pragma once

#include <exception>
#include <string>
#include <utility>
#include <vector>

#include "neuronlens/error.h"

namespace neuronlens::server {

// Rewrites the paths of the files the server was started with (the atlas,
// the model, the compare atlas, the weights an atlas records) to their base
// names: "/srv/atlases/smol.db: corrupt atlas" reads "smol.db: corrupt
// atlas". Their folders go too, so another file beside them is shown by
// name alone. Made once at start-up, then read by every worker thread.
class PathScrubber {
 public:
  // `path` as given, made absolute, and with links resolved (SQLite names
  // the file it opened by its full path).
  void add_file(const std::string& path);
  std::string scrub(std::string message) const;

 private:
  void add(std::string text, std::string replacement);
  std::vector<std::pair<std::string, std::string>> replacements_;  // longest text first
};

// 400 for a bad input, 422 for a bad model or atlas file, 500 for a failure
// of neuronlens itself.
int http_status_for(ErrorKind kind);

struct ErrorReply {
  int status = 500;
  std::string message;
};

// The reply to `failure`: a RequestError keeps its status, another
// neuronlens::Error answers by its kind, std::bad_alloc and any other
// exception are 500. The message is scrubbed of the server's paths.
ErrorReply error_reply(const std::exception_ptr& failure, const PathScrubber& paths);

}  // namespace neuronlens::server

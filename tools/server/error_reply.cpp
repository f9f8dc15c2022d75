// Failures as HTTP replies (error_reply.h).
#include "error_reply.h"

#include <algorithm>
#include <filesystem>
#include <new>

#include "request_error.h"

namespace neuronlens::server {

void PathScrubber::add(std::string text, std::string replacement) {
  if (text.empty() || text == replacement) return;
  for (const auto& [known, _] : replacements_) {
    if (known == text) return;
  }
  replacements_.emplace_back(std::move(text), std::move(replacement));
  std::stable_sort(replacements_.begin(), replacements_.end(),
                   [](const auto& a, const auto& b) { return a.first.size() > b.first.size(); });
}

void PathScrubber::add_file(const std::string& path) {
  if (path.empty()) return;
  namespace fs = std::filesystem;
  std::error_code ec;
  std::vector<fs::path> forms = {fs::path(path)};
  if (const fs::path absolute = fs::absolute(path, ec); !ec) forms.push_back(absolute.lexically_normal());
  if (const fs::path resolved = fs::weakly_canonical(path, ec); !ec) forms.push_back(resolved);
  for (const fs::path& form : forms) {
    add(form.string(), form.filename().string());
    const fs::path folder = form.parent_path();
    // The root and the working directory ("") say nothing about the machine.
    if (folder.empty() || folder == folder.root_path()) continue;
    add(folder.string() + "/", "");
    add(folder.string(), folder.filename().string());
  }
}

std::string PathScrubber::scrub(std::string message) const {
  for (const auto& [text, replacement] : replacements_) {
    for (size_t at = message.find(text); at != std::string::npos; at = message.find(text, at + replacement.size())) {
      message.replace(at, text.size(), replacement);
    }
  }
  return message;
}

int http_status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::BadInput:
      return 400;
    case ErrorKind::BadFile:
      return 422;
    case ErrorKind::Internal:
      break;
  }
  return 500;
}

ErrorReply error_reply(const std::exception_ptr& failure, const PathScrubber& paths) {
  ErrorReply reply;
  try {
    std::rethrow_exception(failure);
  } catch (const RequestError& e) {
    reply = {e.status(), e.what()};
  } catch (const Error& e) {
    reply = {http_status_for(e.kind()), e.what()};
  } catch (const std::bad_alloc&) {
    reply = {500, "out of memory"};
  } catch (const std::exception& e) {
    reply = {500, std::string("internal error: ") + e.what()};
  } catch (...) {
    reply = {500, "internal error"};
  }
  reply.message = paths.scrub(std::move(reply.message));
  return reply;
}

}  // namespace neuronlens::server

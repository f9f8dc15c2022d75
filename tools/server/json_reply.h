// JSON out: every response body and stream line goes through json_text, which
// writes invalid UTF-8 (token bytes, a user's query echoed back) as U+FFFD
// instead of throwing, so no text can make a reply fail.
#pragma once

#include <httplib.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>

namespace neuronlens::server {

inline std::string json_text(const nlohmann::json& value) {
  return value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

// A served file as replies name it: its base name, never the server's path.
inline std::string file_name(const std::string& path) { return std::filesystem::path(path).filename().string(); }

inline void send_json(httplib::Response& response, const nlohmann::json& value) {
  response.status = 200;
  response.set_content(json_text(value), "application/json");
}

}  // namespace neuronlens::server

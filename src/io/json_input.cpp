// Depth-bounded JSON parsing and bounded excerpts (see io/json_input.h).
#include "io/json_input.h"
#include "io/whole_file.h"

#include <algorithm>
#include <fstream>
#include <sstream>

namespace neuronlens {
namespace {

using Json = nlohmann::json;

// Levels json_excerpt descends before writing "..." for a container.
constexpr int kExcerptDepth = 8;

// Appends `value` as dump() would write it, stopping once `out` holds more
// than `limit` characters or at kExcerptDepth. Returns false when it stopped
// early. Recursion is bounded by kExcerptDepth, not by the value.
bool append_excerpt(const Json& value, size_t limit, int depth, std::string& out) {
  if (out.size() > limit) return false;
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    // Dump only a prefix: a long string is cut anyway, and a cut may split a
    // UTF-8 sequence, which `replace` shows as U+FFFD instead of throwing.
    const size_t room = limit - out.size() + 1;
    const Json prefix = text.size() > room ? Json(text.substr(0, room)) : Json();
    out += (text.size() > room ? prefix : value).dump(-1, ' ', false, Json::error_handler_t::replace);
    return out.size() <= limit;
  }
  if (!value.is_structured()) {
    out += value.dump(-1, ' ', false, Json::error_handler_t::replace);
    return out.size() <= limit;
  }
  const bool is_object = value.is_object();
  out += is_object ? '{' : '[';
  if (depth >= kExcerptDepth && !value.empty()) return false;  // the caller appends "..."
  bool first = true;
  for (auto it = value.begin(); it != value.end(); ++it) {
    if (!first) out += ',';
    first = false;
    if (is_object) {
      if (!append_excerpt(Json(it.key()), limit, depth + 1, out)) return false;
      out += ':';
    }
    if (!append_excerpt(*it, limit, depth + 1, out)) return false;
    if (out.size() > limit) return false;
  }
  out += is_object ? '}' : ']';
  return out.size() <= limit;
}

}  // namespace

std::string json_too_deep_message() {
  return "JSON nested deeper than " + std::to_string(kMaxJsonDepth) + " levels of arrays and objects";
}

Json parse_json_input(std::string_view text, const std::string& source, ErrorKind kind,
                      const Json::parser_callback_t& callback) {
  // nlohmann passes the number of enclosing containers: 0 for the top level.
  auto bounded = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if ((event == Json::parse_event_t::object_start || event == Json::parse_event_t::array_start) &&
        depth >= kMaxJsonDepth) {
      throw Error(kind, source + ": " + json_too_deep_message());
    }
    return callback ? callback(depth, event, parsed) : true;
  };
  try {
    return Json::parse(text.begin(), text.end(), bounded);
  } catch (const Json::exception& e) {
    throw Error(kind, source + ": not valid JSON: " + e.what());
  }
}

Json read_json_file(const std::string& path) {
  return parse_json_input(read_whole_file(path, ErrorKind::BadFile), path);
}

std::string json_excerpt(const Json& value, size_t max_chars) {
  std::string out;
  if (!append_excerpt(value, max_chars, 0, out) || out.size() > max_chars) {
    size_t cut = std::min(out.size(), max_chars);
    // Not inside a UTF-8 sequence: back off over continuation bytes.
    while (cut > 0 && cut < out.size() && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  return out;
}

}  // namespace neuronlens

// Parameter checking for the JSON API (request_params.h).
#include "request_params.h"

#include <charconv>
#include <cmath>
#include <cstdio>

#include "request_error.h"

namespace neuronlens::server {
namespace {

// Quoted and cut short, so an error message never echoes a megabyte back.
std::string shown(const std::string& value) {
  constexpr size_t kMostShown = 40;
  return "'" + (value.size() > kMostShown ? value.substr(0, kMostShown) + "..." : value) + "'";
}

std::string number_text(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", x);
  return buf;
}

const std::string* find_param(const QueryParams& params, const std::string& name) {
  const auto it = params.find(name);
  return it == params.end() ? nullptr : &it->second;
}

int64_t parse_integer(const std::string& text, const std::string& name, int64_t min, int64_t max) {
  int64_t value = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, value);
  const std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (text.empty() || ptr != end || (ec != std::errc() && ec != std::errc::result_out_of_range)) {
    bad_request(name + ": " + shown(text) + " is not " + range);
  }
  if (ec == std::errc::result_out_of_range || value < min || value > max) {
    bad_request(name + ": " + shown(text) + " is out of range (must be " + range + ")");
  }
  return value;
}

const char* json_type(const nlohmann::json& v) { return v.type_name(); }

}  // namespace

int64_t query_integer(const QueryParams& params, const std::string& name, int64_t fallback, int64_t min,
                      int64_t max) {
  const std::string* text = find_param(params, name);
  return text ? parse_integer(*text, name, min, max) : fallback;
}

double query_number(const QueryParams& params, const std::string& name, double fallback, double min, double max,
                    bool min_exclusive) {
  const std::string* text = find_param(params, name);
  if (!text) return fallback;
  double value = 0;
  const char* end = text->data() + text->size();
  const auto [ptr, ec] = std::from_chars(text->data(), end, value);
  const std::string range = std::string(min_exclusive ? "in (" : "in [") + number_text(min) + ", " +
                            number_text(max) + "]";
  if (text->empty() || ptr != end || ec != std::errc() || !std::isfinite(value)) {
    bad_request(name + ": " + shown(*text) + " is not a number " + range);
  }
  if (value < min || value > max || (min_exclusive && value == min)) {
    bad_request(name + ": " + shown(*text) + " is out of range (must be " + range + ")");
  }
  return value;
}

std::string query_choice(const QueryParams& params, const std::string& name, const std::string& fallback,
                         const std::vector<std::string>& choices) {
  const std::string* text = find_param(params, name);
  if (!text) return fallback;
  for (const std::string& c : choices) {
    if (*text == c) return c;
  }
  std::string list;
  for (const std::string& c : choices) list += (list.empty() ? "" : ", ") + c;
  bad_request(name + ": " + shown(*text) + " is not one of " + list);
}

bool query_flag(const QueryParams& params, const std::string& name, bool fallback) {
  const std::string value = query_choice(params, name, fallback ? "1" : "0", {"0", "1", "false", "true"});
  return value == "1" || value == "true";
}

std::optional<std::string> query_text(const QueryParams& params, const std::string& name, size_t min_bytes,
                                      size_t max_bytes) {
  const std::string* text = find_param(params, name);
  if (!text) return std::nullopt;
  if (text->size() < min_bytes || text->size() > max_bytes) {
    bad_request(name + ": must be " + std::to_string(min_bytes) + " to " + std::to_string(max_bytes) +
                " bytes, got " + std::to_string(text->size()));
  }
  return *text;
}

int64_t path_integer(const std::string& segment, const std::string& name, int64_t min, int64_t max) {
  return parse_integer(segment, name, min, max);
}

VectorKind path_kind(const std::string& segment) {
  if (segment == "up") return VectorKind::Up;
  if (segment == "gate") return VectorKind::Gate;
  if (segment == "down") return VectorKind::Down;
  bad_request("kind: " + shown(segment) + " is not a kind (expected up, gate or down)");
}

nlohmann::json parse_json_object(const std::string& body) {
  if (body.empty()) bad_request("the request needs a JSON object as its body");
  // Nesting bounded as for files (src/io/json_input.h): dump() and copies recurse once per level.
  constexpr int kMaxBodyDepth = 256;
  const auto bound_depth = [](int depth, nlohmann::json::parse_event_t event, nlohmann::json&) {
    if ((event == nlohmann::json::parse_event_t::object_start || event == nlohmann::json::parse_event_t::array_start) &&
        depth >= kMaxBodyDepth) {
      bad_request("the body nests deeper than " + std::to_string(kMaxBodyDepth) + " levels of arrays and objects");
    }
    return true;
  };
  nlohmann::json j = nlohmann::json::parse(body, bound_depth, /*allow_exceptions=*/false);
  if (j.is_discarded()) bad_request("the body is not valid JSON");
  if (!j.is_object()) bad_request(std::string("the body must be a JSON object, got ") + json_type(j));
  return j;
}

int64_t json_integer(const nlohmann::json& object, const std::string& name, std::optional<int64_t> fallback,
                     int64_t min, int64_t max) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) {
    if (!fallback) bad_request(name + ": required");
    return *fallback;
  }
  const std::string range = "an integer from " + std::to_string(min) + " to " + std::to_string(max);
  if (it->is_number_unsigned()) {
    const auto v = it->get<uint64_t>();
    if (v > static_cast<uint64_t>(max) || static_cast<int64_t>(v) < min) {
      bad_request(name + ": " + it->dump() + " is out of range (must be " + range + ")");
    }
    return static_cast<int64_t>(v);
  }
  if (it->is_number_integer()) {
    const auto v = it->get<int64_t>();
    if (v < min || v > max) bad_request(name + ": " + it->dump() + " is out of range (must be " + range + ")");
    return v;
  }
  bad_request(name + ": must be " + range + ", got " + json_type(*it) +
              (it->is_number_float() ? " " + number_text(it->get<double>()) : std::string()));
}

uint64_t json_unsigned(const nlohmann::json& object, const std::string& name, uint64_t fallback) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (it->is_number_unsigned()) return it->get<uint64_t>();
  if (it->is_number_integer()) bad_request(name + ": must not be negative, got " + it->dump());
  bad_request(name + ": must be a non-negative integer, got " + json_type(*it));
}

double json_number(const nlohmann::json& object, const std::string& name, double fallback, double min, double max) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_number()) bad_request(name + ": must be a number, got " + json_type(*it));
  const double v = it->get<double>();
  if (!std::isfinite(v) || v < min || v > max) {
    bad_request(name + ": " + number_text(v) + " is out of range (must be a finite number in [" + number_text(min) +
                ", " + number_text(max) + "])");
  }
  return v;
}

bool json_bool(const nlohmann::json& object, const std::string& name, bool fallback) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return fallback;
  if (!it->is_boolean()) bad_request(name + ": must be true or false, got " + json_type(*it));
  return it->get<bool>();
}

std::string json_string(const nlohmann::json& object, const std::string& name, size_t min_bytes, size_t max_bytes) {
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) bad_request(name + ": required");
  if (!it->is_string()) bad_request(name + ": must be a string, got " + json_type(*it));
  const auto& s = it->get_ref<const std::string&>();
  if (s.size() < min_bytes || s.size() > max_bytes) {
    bad_request(name + ": must be " + std::to_string(min_bytes) + " to " + std::to_string(max_bytes) +
                " bytes, got " + std::to_string(s.size()));
  }
  return s;
}

const nlohmann::json& json_array(const nlohmann::json& object, const std::string& name, size_t max_items) {
  static const nlohmann::json kEmpty = nlohmann::json::array();
  const auto it = object.find(name);
  if (it == object.end() || it->is_null()) return kEmpty;
  if (!it->is_array()) bad_request(name + ": must be an array, got " + json_type(*it));
  if (it->size() > max_items) {
    bad_request(name + ": at most " + std::to_string(max_items) + " entries, got " + std::to_string(it->size()));
  }
  return *it;
}

}  // namespace neuronlens::server

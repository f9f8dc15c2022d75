// Reading and checking request parameters: query strings, path segments and
// JSON bodies. Every reader throws RequestError(400) naming the parameter,
// what it must be and what it was, so a handler never sees a value out of
// its range.
#pragma once

#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "neuronlens/decode.h"

namespace neuronlens::server {

// A query string, as httplib parses it (a repeated key keeps its first value).
using QueryParams = std::multimap<std::string, std::string>;

// An integer in [min, max] written in decimal digits (a leading '-' allowed);
// `fallback` when the parameter is absent.
int64_t query_integer(const QueryParams& params, const std::string& name, int64_t fallback, int64_t min,
                      int64_t max);
// A finite number in [min, max] (`min_exclusive`: in (min, max]).
double query_number(const QueryParams& params, const std::string& name, double fallback, double min, double max,
                    bool min_exclusive = false);
// One of `choices`.
std::string query_choice(const QueryParams& params, const std::string& name, const std::string& fallback,
                         const std::vector<std::string>& choices);
// "0"/"1"/"false"/"true".
bool query_flag(const QueryParams& params, const std::string& name, bool fallback);
// Text of min_bytes..max_bytes bytes; nullopt when absent.
std::optional<std::string> query_text(const QueryParams& params, const std::string& name, size_t min_bytes,
                                      size_t max_bytes);

// A path segment that must be an integer in [min, max].
int64_t path_integer(const std::string& segment, const std::string& name, int64_t min, int64_t max);
// "up", "gate" or "down".
VectorKind path_kind(const std::string& segment);

// The body as a JSON object; 400 when it is empty, not JSON, or not an object.
nlohmann::json parse_json_object(const std::string& body);

// Fields of a JSON object. A field of the wrong JSON type is a 400 (no
// conversions: "3" is not a number, 3.0 is not an integer).
int64_t json_integer(const nlohmann::json& object, const std::string& name, std::optional<int64_t> fallback,
                     int64_t min, int64_t max);
uint64_t json_unsigned(const nlohmann::json& object, const std::string& name, uint64_t fallback);
double json_number(const nlohmann::json& object, const std::string& name, double fallback, double min, double max);
bool json_bool(const nlohmann::json& object, const std::string& name, bool fallback);
std::string json_string(const nlohmann::json& object, const std::string& name, size_t min_bytes, size_t max_bytes);
// An array field (empty when absent) of at most `max_items` entries.
const nlohmann::json& json_array(const nlohmann::json& object, const std::string& name, size_t max_items);

}  // namespace neuronlens::server

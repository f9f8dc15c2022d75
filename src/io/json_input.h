// JSON read from a file or a request, which may be hostile.
//
// nlohmann/json parses iteratively, but dumping, copying and comparing a value
// recurse once per level: a 130 KB file of nested brackets overflows the stack
// the first time an error message shows the value. So every JSON input is
// parsed with a bound on its nesting depth, and error messages show values
// through json_excerpt, which is bounded in both depth and length.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "neuronlens/error.h"

namespace neuronlens {

// No model, tokenizer or config file nests anywhere near this deep.
constexpr int kMaxJsonDepth = 256;

// "JSON nested deeper than 256 levels of arrays and objects", for a message
// that names the source first.
std::string json_too_deep_message();

// Parses `text`. Throws Error of `kind` prefixed with `source` when the text
// is not well-formed JSON or nests deeper than kMaxJsonDepth. `callback`, when
// given, sees every parse event as with nlohmann::json::parse and may throw.
nlohmann::json parse_json_input(std::string_view text, const std::string& source, ErrorKind kind = ErrorKind::BadFile,
                                const nlohmann::json::parser_callback_t& callback = nullptr);

// Reads and parses the file at `path` (a BadFile error when it cannot be read).
nlohmann::json read_json_file(const std::string& path);

// `value` as JSON text for an error message: the exact dump() of a small
// value, else its first `max_chars` characters followed by "...". Never
// descends more than a few levels and never builds a string much longer than
// `max_chars`, whatever the value holds.
std::string json_excerpt(const nlohmann::json& value, size_t max_chars = 80);

}  // namespace neuronlens

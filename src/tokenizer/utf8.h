// UTF-8 helpers shared by the vocabulary and the tokenizers.
//
// "Valid" follows RFC 3629 (the definition Python's strict "utf-8" codec and
// the Unicode standard use): shortest form only, no UTF-16 surrogates
// (U+D800..U+DFFF), nothing above U+10FFFF. Token bytes are arbitrary, so
// every caller must be ready for a sequence that is not valid.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace neuronlens::utf8 {

struct DecodedCodePoint {
  char32_t code_point = 0;
  size_t length = 0;  // bytes consumed, 1..4
};

// Decodes the code point starting at text[pos], or nullopt when the bytes
// there do not start a valid sequence (truncated, overlong, surrogate, out of
// range, or a stray continuation byte). Requires pos < text.size().
std::optional<DecodedCodePoint> decode_at(std::string_view text, size_t pos);

// Appends the UTF-8 encoding of `code_point` (which must be <= U+10FFFF).
void append(std::string& out, char32_t code_point);

// True when the whole of `text` is valid UTF-8.
bool is_valid(std::string_view text);

}  // namespace neuronlens::utf8

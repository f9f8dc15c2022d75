#include "tokenizer/utf8.h"

#include <cassert>

namespace neuronlens::utf8 {
namespace {

bool is_continuation(unsigned char byte) { return (byte & 0xC0) == 0x80; }

}  // namespace

std::optional<DecodedCodePoint> decode_at(std::string_view text, size_t pos) {
  assert(pos < text.size());
  const auto byte_at = [&](size_t i) { return static_cast<unsigned char>(text[pos + i]); };
  const unsigned char lead = byte_at(0);
  if (lead < 0x80) return DecodedCodePoint{lead, 1};

  size_t length = 0;
  char32_t code_point = 0;
  // The smallest code point each length may encode: anything below is an
  // overlong form, which would let two byte strings display the same.
  char32_t minimum = 0;
  if ((lead & 0xE0) == 0xC0) {
    length = 2;
    code_point = lead & 0x1F;
    minimum = 0x80;
  } else if ((lead & 0xF0) == 0xE0) {
    length = 3;
    code_point = lead & 0x0F;
    minimum = 0x800;
  } else if ((lead & 0xF8) == 0xF0) {
    length = 4;
    code_point = lead & 0x07;
    minimum = 0x10000;
  } else {
    return std::nullopt;  // a continuation byte or 0xF8..0xFF: never a lead byte
  }
  if (text.size() - pos < length) return std::nullopt;
  for (size_t i = 1; i < length; ++i) {
    if (!is_continuation(byte_at(i))) return std::nullopt;
    code_point = (code_point << 6) | (byte_at(i) & 0x3F);
  }
  if (code_point < minimum || code_point > 0x10FFFF) return std::nullopt;
  if (code_point >= 0xD800 && code_point <= 0xDFFF) return std::nullopt;
  return DecodedCodePoint{code_point, length};
}

void append(std::string& out, char32_t code_point) {
  assert(code_point <= 0x10FFFF);
  if (code_point < 0x80) {
    out += static_cast<char>(code_point);
  } else if (code_point < 0x800) {
    out += static_cast<char>(0xC0 | (code_point >> 6));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else if (code_point < 0x10000) {
    out += static_cast<char>(0xE0 | (code_point >> 12));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (code_point >> 18));
    out += static_cast<char>(0x80 | ((code_point >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((code_point >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (code_point & 0x3F));
  }
}

bool is_valid(std::string_view text) {
  for (size_t pos = 0; pos < text.size();) {
    const auto decoded = decode_at(text, pos);
    if (!decoded) return false;
    pos += decoded->length;
  }
  return true;
}

}  // namespace neuronlens::utf8

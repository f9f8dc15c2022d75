// How a token's raw string becomes bytes and display text
// (src/tokenizer/vocabulary.cpp); byte_level_encode, the way back, is public
// (neuronlens/vocab.h).
#pragma once

#include <string>
#include <string_view>

namespace neuronlens {

std::string byte_level_decode(std::string_view encoded);   // GPT-2 code points -> bytes
std::string sentencepiece_decode(std::string_view piece);  // '▁' -> ' ', "<0xNN>" -> byte
std::string escape_invalid_utf8(std::string_view bytes);   // invalid bytes -> "\xNN"

}  // namespace neuronlens

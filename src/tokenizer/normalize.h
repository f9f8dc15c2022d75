// Unicode normalisation a tokenizer applies before its pre-tokenizer.
//
// Qwen2's tokenizer.json starts with an NFC normalizer, so Hugging Face
// encodes "e" + U+0301 (combining acute) exactly as "é" (U+00E9). llama.cpp
// leaves it out; we follow Hugging Face, the reference the tests hold us to.
#pragma once

#include <string>
#include <string_view>

namespace neuronlens {

// `text` in Normalization Form C (Unicode's canonical composition, through
// utf8proc). Invalid UTF-8 is not an error: each maximal valid run is
// normalised on its own and invalid bytes are kept as they are, so text the
// regexes would cut into byte tokens stays byte for byte what it was.
std::string nfc_normalize(std::string_view text);

}  // namespace neuronlens

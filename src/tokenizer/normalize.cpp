#include "tokenizer/normalize.h"

#include <utf8proc.h>

#include <algorithm>
#include <cstdlib>
#include <memory>

#include "tokenizer/utf8.h"

namespace neuronlens {
namespace {

// Appends the NFC form of `run`, which is valid UTF-8.
void append_nfc(std::string_view run, std::string& out) {
  if (run.empty()) return;
  utf8proc_uint8_t* mapped = nullptr;
  const utf8proc_ssize_t length =
      utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(run.data()), static_cast<utf8proc_ssize_t>(run.size()),
                   &mapped, static_cast<utf8proc_option_t>(UTF8PROC_STABLE | UTF8PROC_COMPOSE));
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(mapped, &std::free);
  if (length < 0) {
    // utf8proc refuses only what utf8::decode_at already rejects (or memory
    // running out); keeping the text unnormalised is the safe answer.
    out.append(run);
    return;
  }
  out.append(reinterpret_cast<const char*>(mapped), static_cast<size_t>(length));
}

}  // namespace

std::string nfc_normalize(std::string_view text) {
  // ASCII is its own NFC form, and most text is ASCII.
  if (std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; })) {
    return std::string(text);
  }
  std::string out;
  out.reserve(text.size());
  size_t run_start = 0;
  for (size_t pos = 0; pos < text.size();) {
    if (const auto decoded = utf8::decode_at(text, pos)) {
      pos += decoded->length;
      continue;
    }
    append_nfc(text.substr(run_start, pos - run_start), out);
    out += text[pos];  // an invalid byte, kept
    run_start = ++pos;
  }
  append_nfc(text.substr(run_start), out);
  return out;
}

}  // namespace neuronlens

#include "tokenizer/pretokenizer.h"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <array>

#include "neuronlens/error.h"

namespace neuronlens {

// The trailing "|\s+" (which llama.cpp leaves out) only matters for a single
// non-space whitespace character before a non-space; with gaps kept the two
// forms split the same, but this is the form Hugging Face runs.
const char* const kGpt2Pattern = R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)";

namespace {

constexpr const char* kLlama3Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";
constexpr const char* kQwen2Pattern =
    R"((?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+)";

}  // namespace

struct PreTokenizer::Compiled {
  pcre2_code* code = nullptr;  // immutable once compiled: shared by concurrent split() calls
  ~Compiled() {
    if (code) pcre2_code_free(code);
  }
};

PreTokenizer::PreTokenizer(std::vector<std::string> patterns) : patterns_(std::move(patterns)) {
  for (const std::string& pattern : patterns_) {
    auto compiled = std::make_unique<Compiled>();
    int error_code = 0;
    PCRE2_SIZE error_offset = 0;
    compiled->code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF, &error_code, &error_offset,
                                   nullptr);
    if (!compiled->code) {
      std::array<PCRE2_UCHAR, 256> message{};
      pcre2_get_error_message(error_code, message.data(), message.size());
      throw bad_file("pre-tokenizer regex '" + pattern + "' does not compile at offset " +
                     std::to_string(error_offset) + ": " + reinterpret_cast<const char*>(message.data()));
    }
    // JIT is an optional speed-up; the interpreter gives the same matches.
    pcre2_jit_compile(compiled->code, PCRE2_JIT_COMPLETE);
    compiled_.push_back(std::move(compiled));
  }
}

PreTokenizer::PreTokenizer(PreTokenizer&&) noexcept = default;
PreTokenizer& PreTokenizer::operator=(PreTokenizer&&) noexcept = default;
PreTokenizer::~PreTokenizer() = default;

std::vector<std::string> PreTokenizer::patterns_for_gguf_pre(std::string_view name) {
  // llama.cpp src/llama-vocab.cpp, llm_tokenizer_bpe: one list per family.
  if (name.empty() || name == "default" || name == "gpt-2" || name == "gpt2" || name == "mpt" || name == "olmo" ||
      name == "jais") {
    return {kGpt2Pattern};
  }
  if (name == "smollm" || name == "starcoder" || name == "refact" || name == "command-r" || name == "codeshell" ||
      name == "exaone" || name == "minerva-7b") {
    return {R"(\p{N})", kGpt2Pattern};  // HF: Digits(individual_digits) then ByteLevel
  }
  if (name == "llama-bpe" || name == "llama3" || name == "dbrx" || name == "smaug-bpe") return {kLlama3Pattern};
  if (name == "qwen2" || name == "stablelm2") return {kQwen2Pattern};
  throw bad_file("tokenizer.ggml.pre is '" + std::string(name) +
                 "', which is not supported; supported: gpt-2, default, smollm (and starcoder, refact, command-r, "
                 "codeshell, exaone, minerva-7b), llama-bpe (and llama3, dbrx, smaug-bpe), qwen2 (and stablelm2)");
}

std::vector<std::string_view> PreTokenizer::split(std::string_view text) const {
  std::vector<std::string_view> pieces;
  if (text.empty()) return pieces;
  pieces.push_back(text);
  for (const auto& compiled : compiled_) {
    pcre2_match_data* match = pcre2_match_data_create_from_pattern(compiled->code, nullptr);
    if (!match) throw internal_error("pre-tokenizer: out of memory for PCRE2 match data");
    std::vector<std::string_view> next;
    next.reserve(pieces.size() * 2);
    for (const std::string_view piece : pieces) {
      const auto* subject = reinterpret_cast<PCRE2_SPTR>(piece.data());
      size_t start = 0;  // next byte not yet emitted
      size_t offset = 0;  // where to search from
      while (offset < piece.size()) {
        const int rc = pcre2_match(compiled->code, subject, piece.size(), offset, 0, match, nullptr);
        if (rc == PCRE2_ERROR_NOMATCH) break;
        if (rc < 0) {
          pcre2_match_data_free(match);
          std::array<PCRE2_UCHAR, 256> message{};
          pcre2_get_error_message(rc, message.data(), message.size());
          throw bad_input(std::string("pre-tokenizer: PCRE2 match failed: ") +
                          reinterpret_cast<const char*>(message.data()));
        }
        const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(match);
        const size_t begin = ovector[0];
        const size_t end = ovector[1];
        if (end == begin) {
          // None of our patterns match the empty string; step past it anyway.
          offset = begin + 1;
          continue;
        }
        if (begin > start) next.push_back(piece.substr(start, begin - start));
        next.push_back(piece.substr(begin, end - begin));
        start = offset = end;
      }
      if (start < piece.size()) next.push_back(piece.substr(start));
    }
    pcre2_match_data_free(match);
    pieces = std::move(next);
  }
  return pieces;
}

}  // namespace neuronlens

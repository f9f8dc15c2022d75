// Pre-tokenizers: the regex splits that cut text into words before BPE.
//
// A pre-tokenizer is a list of regexes applied in turn, as llama.cpp and
// Hugging Face's Split(behavior="Isolated") apply them: each regex cuts every
// current piece into its matches and the gaps between them, all of which are
// kept. Patterns are compiled with PCRE2 in UTF + UCP mode (\s, \p{L}, \p{N}
// are Unicode-aware) and PCRE2_MATCH_INVALID_UTF, so invalid UTF-8 in the text
// matches nothing and ends up in a gap of its own instead of failing.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace neuronlens {

class PreTokenizer {
 public:
  // Throws Error naming the pattern when one does not compile.
  explicit PreTokenizer(std::vector<std::string> patterns);
  PreTokenizer(PreTokenizer&&) noexcept;
  PreTokenizer& operator=(PreTokenizer&&) noexcept;
  ~PreTokenizer();

  // The regexes llama.cpp uses for GGUF tokenizer.ggml.pre = `name`. Unknown
  // names (and "default", "gpt-2") get GPT-2's.
  static std::vector<std::string> patterns_for_gguf_pre(std::string_view name);

  // Pieces of `text`, in order; their concatenation is `text`.
  std::vector<std::string_view> split(std::string_view text) const;
  const std::vector<std::string>& patterns() const { return patterns_; }

 private:
  struct Compiled;
  std::vector<std::string> patterns_;
  std::vector<std::unique_ptr<Compiled>> compiled_;
};

// GPT-2's split regex, as Hugging Face's ByteLevel pre-tokenizer has it.
extern const char* const kGpt2Pattern;

}  // namespace neuronlens

// The BPE merge loop shared by both tokenizer families.
//
// A word starts as a list of symbols (adjacent byte ranges of the word). The
// pair of neighbours with the best (lowest) priority is merged, leftmost first
// among equals, until no neighbouring pair has a priority. Byte-level BPE asks
// the merge rank of "left right"; SentencePiece asks minus the score of the
// token left+right. A heap of candidate pairs, checked lazily when popped,
// makes a word of n symbols cost O(n log n) lookups, so a long run of one
// character (pages of spaces, a minified file) stays fast.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string_view>
#include <vector>

namespace neuronlens {

// Priority of merging `left` and `right` (lower merges first), or nullopt
// when the pair does not merge.
using PairPriority = std::function<std::optional<double>(std::string_view left, std::string_view right)>;

// Splits `word` into its merged symbols. `symbol_lengths` are the initial
// symbols' byte lengths, in order, summing to word.size().
std::vector<std::string_view> bpe_merge(std::string_view word, const std::vector<size_t>& symbol_lengths,
                                        const PairPriority& priority);

// Byte lengths of the UTF-8 characters of `text`; an invalid byte counts as a
// character of length 1.
std::vector<size_t> utf8_character_lengths(std::string_view text);

}  // namespace neuronlens

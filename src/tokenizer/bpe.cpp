#include "tokenizer/bpe.h"

#include <cassert>
#include <queue>

#include "tokenizer/utf8.h"

namespace neuronlens {
namespace {

struct Symbol {
  size_t begin = 0;
  size_t length = 0;  // 0 once merged into its left neighbour
  int prev = -1;
  int next = -1;
};

struct Candidate {
  double priority = 0;
  int left = 0;  // symbol index; indices grow left to right, so it orders by position
  size_t left_length = 0;
  size_t right_length = 0;
};

// std::priority_queue pops the greatest: make that the lowest priority, then
// the leftmost pair.
struct LaterCandidate {
  bool operator()(const Candidate& a, const Candidate& b) const {
    return a.priority != b.priority ? a.priority > b.priority : a.left > b.left;
  }
};

}  // namespace

std::vector<size_t> utf8_character_lengths(std::string_view text) {
  std::vector<size_t> lengths;
  lengths.reserve(text.size());
  for (size_t pos = 0; pos < text.size();) {
    const auto decoded = utf8::decode_at(text, pos);
    const size_t length = decoded ? decoded->length : 1;
    lengths.push_back(length);
    pos += length;
  }
  return lengths;
}

std::vector<std::string_view> bpe_merge(std::string_view word, const std::vector<size_t>& symbol_lengths,
                                        const PairPriority& priority) {
  std::vector<Symbol> symbols(symbol_lengths.size());
  size_t begin = 0;
  for (size_t i = 0; i < symbols.size(); ++i) {
    symbols[i] = Symbol{begin, symbol_lengths[i], static_cast<int>(i) - 1,
                        i + 1 < symbols.size() ? static_cast<int>(i + 1) : -1};
    begin += symbol_lengths[i];
  }
  assert(begin == word.size());
  const auto text_of = [&](const Symbol& s) { return word.substr(s.begin, s.length); };

  std::priority_queue<Candidate, std::vector<Candidate>, LaterCandidate> queue;
  const auto consider = [&](int left) {
    if (left < 0) return;
    const Symbol& a = symbols[static_cast<size_t>(left)];
    if (a.next < 0) return;
    const Symbol& b = symbols[static_cast<size_t>(a.next)];
    if (const auto p = priority(text_of(a), text_of(b))) queue.push(Candidate{*p, left, a.length, b.length});
  };
  for (size_t i = 0; i + 1 < symbols.size(); ++i) consider(static_cast<int>(i));

  while (!queue.empty()) {
    const Candidate top = queue.top();
    queue.pop();
    Symbol& left = symbols[static_cast<size_t>(top.left)];
    // Stale when either side has merged since: lengths only ever grow, and
    // the right neighbour can only change by merging into `left`.
    if (left.length != top.left_length || left.next < 0) continue;
    Symbol& right = symbols[static_cast<size_t>(left.next)];
    if (right.length != top.right_length) continue;
    left.length += right.length;
    right.length = 0;
    left.next = right.next;
    if (right.next >= 0) symbols[static_cast<size_t>(right.next)].prev = top.left;
    consider(left.prev);
    consider(top.left);
  }

  std::vector<std::string_view> result;
  for (int i = symbols.empty() ? -1 : 0; i >= 0; i = symbols[static_cast<size_t>(i)].next) {
    result.push_back(text_of(symbols[static_cast<size_t>(i)]));
  }
  return result;
}

}  // namespace neuronlens

#include "tokenizer/special_trie.h"

#include <cassert>

namespace neuronlens {

SpecialTrie::SpecialTrie() : nodes_(1) {}

uint32_t SpecialTrie::child(uint32_t node, unsigned char byte) const {
  if (node == 0) return root_children_[byte];
  for (const auto& [b, next] : nodes_[node].children) {
    if (b == byte) return next;
  }
  return 0;
}

void SpecialTrie::add(std::string_view text, int32_t id, bool control) {
  assert(!text.empty());
  uint32_t node = 0;
  for (const char c : text) {
    const auto byte = static_cast<unsigned char>(c);
    uint32_t next = child(node, byte);
    if (next == 0) {
      next = static_cast<uint32_t>(nodes_.size());
      nodes_.emplace_back();  // may move nodes_: index, do not hold references across it
      if (node == 0) {
        root_children_[byte] = next;
      } else {
        nodes_[node].children.emplace_back(byte, next);
      }
    }
    node = next;
  }
  Node& end = nodes_[node];
  if (end.any < 0) end.any = id;
  if (!control && end.always < 0) end.always = id;
}

SpecialTrie::Match SpecialTrie::longest_at(std::string_view text, size_t pos, bool parse_special) const {
  Match best;
  uint32_t node = 0;
  for (size_t i = pos; i < text.size(); ++i) {
    node = child(node, static_cast<unsigned char>(text[i]));
    if (node == 0) break;
    const int32_t id = parse_special ? nodes_[node].any : nodes_[node].always;
    if (id >= 0) best = Match{id, i - pos + 1};
  }
  return best;
}

}  // namespace neuronlens

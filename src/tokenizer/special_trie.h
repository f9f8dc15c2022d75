// The special tokens a tokenizer splits the text at before BPE sees it
// (control, unknown and user-defined tokens), in a byte trie, so finding the
// longest one that starts at a place costs one step per matching byte,
// however many there are. Gemma 3 has 6,400 of them, 6,300 starting with '<'
// ("<unused0>".."<unused6241>", HTML tags): a list per first byte made every
// '<' in a text compare against all of them.
#pragma once

#include <array>
#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace neuronlens {

class SpecialTrie {
 public:
  SpecialTrie();

  // Adds token `id` spelled `text` (not empty). `control` tokens match only
  // with parse_special. Where two tokens have the same text, the one added
  // first stays (add them lowest id first).
  void add(std::string_view text, int32_t id, bool control);

  struct Match {
    int32_t id = -1;  // -1: none
    size_t length = 0;
  };
  // The longest token that `text` starts with at `pos` (pos < text.size()).
  Match longest_at(std::string_view text, size_t pos, bool parse_special) const;

 private:
  struct Node {
    int32_t any = -1;     // the token ending here, control or not
    int32_t always = -1;  // the token ending here that is not control
    std::vector<std::pair<unsigned char, uint32_t>> children;  // (byte, node); below the root
  };
  std::vector<Node> nodes_;                // nodes_[0] is the root
  std::array<uint32_t, 256> root_children_{};  // 0: none
  uint32_t child(uint32_t node, unsigned char byte) const;
};

}  // namespace neuronlens

// Recent concept-search results, so paging through one search (and the same
// search from several users) costs one pass over the weights.
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "neuronlens/concept_search.h"

namespace neuronlens::server {

struct SearchResult {
  ConceptTokens concept_tokens;
  std::vector<ConceptHit> hits;  // the best `depth`, best first
  int64_t depth = 0;             // how many were asked for (hits may be fewer)
  int64_t total = 0;             // neurons ranked
  bool exact = false;
  std::string note;
};

class SearchCache {
 public:
  // A cached result for `key` holding at least `depth` hits (or all there are).
  std::shared_ptr<const SearchResult> find(const std::string& key, int64_t depth) {
    std::lock_guard lock(mutex_);
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      const SearchResult& r = *it->second;
      if (it->first == key && (r.depth >= depth || static_cast<int64_t>(r.hits.size()) < r.depth)) {
        entries_.splice(entries_.begin(), entries_, it);  // most recently used first
        return entries_.front().second;
      }
    }
    return nullptr;
  }

  void put(const std::string& key, std::shared_ptr<const SearchResult> result) {
    std::lock_guard lock(mutex_);
    entries_.remove_if([&](const auto& e) { return e.first == key; });
    entries_.emplace_front(key, std::move(result));
    if (entries_.size() > kCapacity) entries_.pop_back();
  }

 private:
  static constexpr size_t kCapacity = 64;
  std::mutex mutex_;
  std::list<std::pair<std::string, std::shared_ptr<const SearchResult>>> entries_;
};

}  // namespace neuronlens::server

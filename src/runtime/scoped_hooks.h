// Hooks a library call adds to a caller's Session for its own length only:
// removed when the call ends, however it ends, so the caller's hooks are
// left exactly as they were.
#pragma once

#include <vector>

#include "neuronlens/runtime.h"

namespace neuronlens {

class ScopedHooks {
 public:
  explicit ScopedHooks(Session& session) : session_(session) {}
  ~ScopedHooks() { remove_all(); }
  ScopedHooks(const ScopedHooks&) = delete;
  ScopedHooks& operator=(const ScopedHooks&) = delete;

  void add(HookId id) { ids_.push_back(id); }
  void add(const std::vector<HookId>& ids) { ids_.insert(ids_.end(), ids.begin(), ids.end()); }

  // Removes them now (e.g. before the next pass); idempotent.
  void remove_all() noexcept {
    for (HookId id : ids_) {
      try {
        session_.remove_hook(id);
      } catch (...) {
        // No longer registered: nothing left to undo.
      }
    }
    ids_.clear();
  }

 private:
  Session& session_;
  std::vector<HookId> ids_;
};

}  // namespace neuronlens

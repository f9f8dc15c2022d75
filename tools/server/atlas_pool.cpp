// A pool of read-only atlas connections (atlas_pool.h).
#include "atlas_pool.h"

namespace neuronlens::server {
namespace {
// Connections kept open between requests; more are opened under load and
// closed when returned beyond this.
constexpr size_t kMostIdle = 16;
}  // namespace

AtlasPool::AtlasPool(std::string path) : path_(std::move(path)) {
  auto first = std::make_unique<Atlas>(Atlas::open(path_));
  settings_ = first->settings();
  idle_.push_back(std::move(first));
}

AtlasPool::Lease AtlasPool::acquire() {
  {
    std::lock_guard lock(mutex_);
    if (!idle_.empty()) {
      std::unique_ptr<Atlas> atlas = std::move(idle_.back());
      idle_.pop_back();
      return Lease(*this, std::move(atlas));
    }
  }
  return Lease(*this, std::make_unique<Atlas>(Atlas::open(path_)));
}

void AtlasPool::give_back(std::unique_ptr<Atlas> atlas) {
  std::lock_guard lock(mutex_);
  if (idle_.size() < kMostIdle) idle_.push_back(std::move(atlas));
}

}  // namespace neuronlens::server

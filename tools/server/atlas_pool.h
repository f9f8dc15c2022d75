// SQLite connections to one atlas, one per request at a time: a connection is
// never used by two threads at once, and concurrent reads run in parallel on
// separate connections (SQLite allows many readers of one file).
#pragma once

#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "neuronlens/atlas.h"

namespace neuronlens::server {

class AtlasPool {
 public:
  // Opens the first connection; throws Error when `path` is not an atlas.
  explicit AtlasPool(std::string path);

  // A connection held until the lease is destroyed.
  class Lease {
   public:
    Lease(AtlasPool& pool, std::unique_ptr<Atlas> atlas) : pool_(&pool), atlas_(std::move(atlas)) {}
    Lease(Lease&&) noexcept = default;
    Lease& operator=(Lease&&) noexcept = default;
    ~Lease() {
      if (atlas_) pool_->give_back(std::move(atlas_));
    }
    Atlas& operator*() const { return *atlas_; }
    Atlas* operator->() const { return atlas_.get(); }

   private:
    AtlasPool* pool_;
    std::unique_ptr<Atlas> atlas_;
  };

  Lease acquire();
  // The settings every connection reads (the same file).
  const AtlasSettings& settings() const { return settings_; }
  const std::string& path() const { return path_; }

 private:
  void give_back(std::unique_ptr<Atlas> atlas);
  std::string path_;
  AtlasSettings settings_;
  std::mutex mutex_;
  std::vector<std::unique_ptr<Atlas>> idle_;
};

}  // namespace neuronlens::server

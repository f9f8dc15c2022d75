// Rank 0's writer: mapped units go to their atlases on a thread of its own,
// so that rank 0 goes on mapping and handing out units while SQLite writes
// (a Llama-3.1-70B-sized unit is 600k rows). One thread, so each atlas still
// sees one writer; a bounded queue, so units arriving faster than they can
// be written hold back the sender instead of filling memory.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

#include "neuronlens/atlas.h"
#include "neuronlens/map_units.h"

namespace neuronlens {

class AtlasWriterThread {
 public:
  // `atlases` outlive the writer; nothing else touches them until finish().
  explicit AtlasWriterThread(std::vector<Atlas>& atlases, size_t capacity = 4)
      : atlases_(atlases), capacity_(capacity), thread_([this] { loop(); }) {}
  ~AtlasWriterThread() { finish(); }
  AtlasWriterThread(const AtlasWriterThread&) = delete;
  AtlasWriterThread& operator=(const AtlasWriterThread&) = delete;

  // Queues a unit for atlas `job`; waits while `capacity` units wait. After
  // a failure, units are dropped (the job is stopping).
  void push(size_t job, MappedUnit unit) {
    std::unique_lock lock(mutex_);
    room_.wait(lock, [&] { return queue_.size() < capacity_ || failure_; });
    if (failure_) return;
    queue_.push_back({job, std::move(unit)});
    work_.notify_one();
  }

  // The first write that failed, or null.
  std::exception_ptr failure() const {
    std::lock_guard lock(mutex_);
    return failure_;
  }

  // Writes what is queued, then stops the thread. Idempotent.
  void finish() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
      work_.notify_one();
    }
    if (thread_.joinable()) thread_.join();
  }

  // After finish(): the seconds spent writing and the rows written (a
  // neuron's row and its top-k rows; a head direction's rows and both
  // sides' top-k rows).
  double seconds() const { return seconds_; }
  int64_t rows() const { return rows_; }
  int64_t units() const { return units_; }

 private:
  struct Item {
    size_t job;
    MappedUnit unit;
  };

  static int64_t rows_of(const MappedUnit& m) {
    int64_t rows = static_cast<int64_t>(m.directions.size());
    for (const NeuronDecoding& n : m.neurons) rows += 1 + static_cast<int64_t>(n.top_ids.size());
    for (const auto& side : m.sides) {
      for (const NeuronDecoding& n : side) rows += static_cast<int64_t>(n.top_ids.size());
    }
    return rows;
  }

  void loop() {
    for (;;) {
      Item item;
      {
        std::unique_lock lock(mutex_);
        work_.wait(lock, [&] { return !queue_.empty() || closing_; });
        if (queue_.empty()) return;
        item = std::move(queue_.front());
        queue_.pop_front();
        room_.notify_one();
      }
      try {
        const auto started = std::chrono::steady_clock::now();
        write_mapped_unit(atlases_[item.job], item.unit);
        seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
        rows_ += rows_of(item.unit);
        ++units_;
      } catch (...) {
        std::lock_guard lock(mutex_);
        if (!failure_) failure_ = std::current_exception();
        queue_.clear();
        room_.notify_all();
      }
    }
  }

  std::vector<Atlas>& atlases_;
  const size_t capacity_;
  mutable std::mutex mutex_;
  std::condition_variable work_, room_;
  std::deque<Item> queue_;
  bool closing_ = false;
  std::exception_ptr failure_;
  double seconds_ = 0;  // written by the thread, read after finish()
  int64_t rows_ = 0;
  int64_t units_ = 0;
  std::thread thread_;  // last: starts after every member above exists
};

}  // namespace neuronlens

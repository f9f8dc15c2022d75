// An exception that leaves an OpenMP region calls std::terminate: a bad file
// or an exhausted allocation inside a parallel loop would kill the process
// instead of reaching the user as an Error. Every parallel region whose body
// can throw runs it through a FirstException and rethrows after the region:
//
//   FirstException failure;
//   #pragma omp parallel for
//   for (int64_t i = 0; i < n; ++i) failure.run([&] { work(i); });
//   failure.rethrow();
//
// The first exception is kept (later ones are dropped); once one is caught
// the remaining iterations return at once, so the loop ends quickly.
#pragma once

#include <atomic>
#include <exception>
#include <mutex>

namespace neuronlens::cpu {

class FirstException {
 public:
  template <typename Body>
  void run(Body&& body) noexcept {
    if (failed_.load(std::memory_order_relaxed)) return;
    try {
      body();
    } catch (...) {
      const std::lock_guard<std::mutex> lock(mutex_);
      if (!first_) first_ = std::current_exception();
      failed_.store(true, std::memory_order_relaxed);
    }
  }
  bool failed() const { return failed_.load(std::memory_order_relaxed); }
  // Call after the region, on the thread that started it.
  void rethrow() const {
    if (first_) std::rethrow_exception(first_);
  }

 private:
  std::atomic<bool> failed_{false};
  std::mutex mutex_;
  std::exception_ptr first_;
};

}  // namespace neuronlens::cpu

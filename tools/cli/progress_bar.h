// A progress bar with rate and ETA on a terminal; silent when stderr is not a
// terminal (piped, CI), where a final one-line summary is printed instead.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdint>
#include <cstdio>
#include <string>

#include "format.h"

namespace neuronlens::cli {

class ProgressBar {
 public:
  // `line_every_seconds` > 0: where stderr is no terminal, a progress line
  // that often instead of nothing (an MPI launcher pipes rank 0's stderr to
  // the terminal or the batch log).
  ProgressBar(std::string label, std::string unit, double line_every_seconds = 0)
      : label_(std::move(label)), unit_(std::move(unit)), line_every_(line_every_seconds) {
    enabled_ = ::isatty(STDERR_FILENO) == 1;
  }

  void update(int64_t done, int64_t total) {
    done_ = done;
    total_ = total;
    if (!enabled_ && line_every_ > 0 && done < total) {
      const auto now = clock::now();
      if (now - last_draw_ < std::chrono::duration<double>(line_every_)) return;
      if (last_draw_ != clock::time_point{}) {  // not at the start: there is a rate to tell
        draw();
        std::fputc('\n', stderr);
      }
      last_draw_ = now;
      return;
    }
    if (!enabled_) return;
    const auto now = clock::now();
    if (done < total && now - last_draw_ < std::chrono::milliseconds(100)) return;
    last_draw_ = now;
    draw();
  }

  // Ends the bar line (terminal) and returns the elapsed seconds.
  double finish() {
    if (enabled_ && total_ > 0) {
      draw();
      std::fputc('\n', stderr);
    }
    return elapsed();
  }

  double elapsed() const { return std::chrono::duration<double>(clock::now() - start_).count(); }

 private:
  using clock = std::chrono::steady_clock;
  void draw() const {
    const double secs = elapsed();
    const double rate = secs > 0 ? static_cast<double>(done_) / secs : 0;
    const double frac = total_ > 0 ? static_cast<double>(done_) / static_cast<double>(total_) : 0;
    constexpr int kWidth = 30;
    const int filled = static_cast<int>(frac * kWidth);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    const double eta = rate > 0 ? static_cast<double>(total_ - done_) / rate : 0;
    std::fprintf(stderr, "%s%s [%s] %5.1f%% %lld/%lld %s, %.0f %s/s, ETA %s   ", enabled_ ? "\r" : "", label_.c_str(),
                 bar.c_str(),
                 100 * frac, static_cast<long long>(done_), static_cast<long long>(total_), unit_.c_str(), rate,
                 unit_.c_str(), human_seconds(eta).c_str());
    std::fflush(stderr);
  }

  std::string label_, unit_;
  double line_every_ = 0;
  bool enabled_ = false;
  int64_t done_ = 0, total_ = 0;
  clock::time_point start_ = clock::now();
  clock::time_point last_draw_{};
};

}  // namespace neuronlens::cli

// A one-line progress display on stderr ("mq-send: 120,000 sent, 118,000 acked,
// 52,300/s"), redrawn at most ten times a second, only when stderr is a
// terminal and -q was not given; nothing at all otherwise. Log lines written
// through the program's logger first erase the line, so they never mix with it.
//
// Threading: one Progress per program, driven from one thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace mq::cli {

class Progress {
 public:
  // Enabled when `want` and stderr is a terminal.
  explicit Progress(bool want);
  ~Progress() { clear(); }
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  bool enabled() const { return enabled_; }
  // True at most every 100ms while enabled: then build the line and draw() it.
  bool due();
  void draw(std::string_view line);
  // Erases the line (before the final summary).
  void clear();
  // Messages per second since construction.
  double rate(uint64_t count) const;

 private:
  bool enabled_;
  std::chrono::steady_clock::time_point start_, next_;
};

// 1234567 -> "1,234,567"
std::string with_commas(uint64_t n);

// For the logger's sink: erases a drawn progress line before a log line.
void erase_progress_line();

}  // namespace mq::cli

// LogLimit: for a condition that repeats (a full disk refusing every send, a
// damaged record read again and again), say it the first time and then at
// most once per interval. Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>

#include "util/parse.h"

namespace mq {

class LogLimit {
 public:
  explicit LogLimit(int64_t every_ms = 60'000) : every_ms_(every_ms) {}
  // True the first time, then when every_ms passed since it last was (one caller wins).
  bool due(int64_t now = now_ms()) {
    int64_t last = last_.load(std::memory_order_relaxed);
    return (last == 0 || now - last >= every_ms_) && last_.compare_exchange_strong(last, now);
  }

 private:
  const int64_t every_ms_;
  std::atomic<int64_t> last_{0};
};

}  // namespace mq

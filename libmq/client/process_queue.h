// In-flight bookkeeping of one consumed queue: the heart of at-least-once.
// Messages are added in offset order when pulled and finished in any order;
// the offset to commit is the lowest one still in flight (or the next to pull
// when nothing is), so a slow message holds the commit back while later ones
// finish. The span (highest pulled - lowest unfinished) bounds what a crash
// can redeliver. Not thread-safe: one owner (the consumer's loop) uses it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>

namespace mq::client {

class ProcessQueue {
 public:
  using Clock = std::chrono::steady_clock;
  explicit ProcessQueue(uint64_t start = 0) : next_pull_(start) {}

  // A pulled message (offset >= next_pull) is now in flight. Offsets skipped by
  // a filter are passed over by advance_to().
  void add(uint64_t offset, uint32_t reconsume, size_t bytes, Clock::time_point now = Clock::now());
  // Nothing to process below `offset` (filtered or past the end): moves next_pull.
  void advance_to(uint64_t offset);
  // Done: processed, or handed to the broker for retry. Unknown offsets are ignored.
  void finish(uint64_t offset);
  // An --orderly failure retried in place: its attempts so far, for the blocker.
  void retried(uint64_t offset, uint32_t reconsume);

  uint64_t next_pull() const { return next_pull_; }
  uint64_t commit_offset() const { return in_flight_.empty() ? next_pull_ : in_flight_.begin()->first; }
  // highest pulled - lowest unfinished (0 when nothing is in flight)
  uint64_t span() const { return in_flight_.empty() ? 0 : next_pull_ - 1 - in_flight_.begin()->first; }
  bool may_pull(uint64_t max_span, size_t max_msgs, size_t max_bytes) const;
  // How many messages a pull may bring without the span exceeding max_span.
  uint64_t pull_budget(uint64_t max_span) const;
  size_t in_flight() const { return in_flight_.size(); }
  size_t unfinished() const { return unfinished_; }
  size_t bytes() const { return bytes_; }

  struct Blocker {
    bool any = false;
    uint64_t offset = 0;
    std::chrono::milliseconds age{0};
    uint32_t reconsume = 0;
    uint32_t finished_behind = 0;
  };
  Blocker blocker(Clock::time_point now = Clock::now()) const;
  // After a reset or losing the queue: forget everything, continue at `offset`.
  void reset(uint64_t offset);

 private:
  struct Entry {
    bool done = false;
    uint32_t reconsume = 0;
    size_t bytes = 0;
    Clock::time_point since;
  };
  std::map<uint64_t, Entry> in_flight_;
  uint64_t next_pull_;
  size_t unfinished_ = 0;
  size_t bytes_ = 0;
};

}  // namespace mq::client

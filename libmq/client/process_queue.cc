#include "client/process_queue.h"

#include <cassert>

namespace mq::client {

void ProcessQueue::add(uint64_t offset, uint32_t reconsume, size_t bytes, Clock::time_point now) {
  if (offset < next_pull_) return;  // a duplicate from an overlapping pull
  in_flight_[offset] = Entry{false, reconsume, bytes, now};
  next_pull_ = offset + 1;
  ++unfinished_;
  bytes_ += bytes;
}

void ProcessQueue::advance_to(uint64_t offset) {
  if (offset > next_pull_) next_pull_ = offset;
}

void ProcessQueue::finish(uint64_t offset) {
  auto it = in_flight_.find(offset);
  if (it == in_flight_.end() || it->second.done) return;
  it->second.done = true;
  assert(unfinished_ > 0);
  --unfinished_;
  bytes_ -= it->second.bytes;
  // The commit point moves past every finished message at the front.
  while (!in_flight_.empty() && in_flight_.begin()->second.done) in_flight_.erase(in_flight_.begin());
}

void ProcessQueue::retried(uint64_t offset, uint32_t reconsume) {
  auto it = in_flight_.find(offset);
  if (it != in_flight_.end() && !it->second.done) it->second.reconsume = reconsume;
}

bool ProcessQueue::may_pull(uint64_t max_span, size_t max_msgs, size_t max_bytes) const {
  if (unfinished_ >= max_msgs || bytes_ >= max_bytes) return false;
  return pull_budget(max_span) > 0;
}

uint64_t ProcessQueue::pull_budget(uint64_t max_span) const {
  if (in_flight_.empty()) return max_span == UINT64_MAX ? max_span : max_span + 1;  // no wrap to 0
  uint64_t used = next_pull_ - in_flight_.begin()->first;  // span if one more were pulled
  return used > max_span ? 0 : max_span - used + 1;
}

ProcessQueue::Blocker ProcessQueue::blocker(Clock::time_point now) const {
  Blocker b;
  if (in_flight_.empty()) return b;
  auto& [off, e] = *in_flight_.begin();
  b.any = true;
  b.offset = off;
  b.age = std::chrono::duration_cast<std::chrono::milliseconds>(now - e.since);
  b.reconsume = e.reconsume;
  for (auto& [o, x] : in_flight_)
    if (x.done) ++b.finished_behind;
  return b;
}

void ProcessQueue::reset(uint64_t offset) {
  in_flight_.clear();
  next_pull_ = offset;
  unfinished_ = 0;
  bytes_ = 0;
}

}  // namespace mq::client

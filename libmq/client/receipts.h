// Send receipts and the in-order buffer that releases them in input order
// even when acks arrive out of order (async mode, retries).
#pragma once

#include <algorithm>
#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "storage/record.h"

namespace mq::client {

struct Receipt {
  uint64_t line = 0;
  storage::MessageId id{};
  std::string broker;                 // "" when no broker took it
  std::optional<uint32_t> queue;      // nullopt: unknown ('-')
  std::optional<uint64_t> offset;
  std::string status;                 // SEND_OK, FLUSH_DISK_TIMEOUT, ..., FAILED, SENT
  bool ok = false;                    // SEND_OK (or SENT in oneway mode)
  bool maybe_stored = false;          // stored but not durable as asked, or outcome unknown
  std::string error;                  // why it failed (FAILED)
};

// LINE<TAB>MSG_ID<TAB>BROKER<TAB>QUEUE<TAB>OFFSET<TAB>STATUS + "\n"
void append_receipt_line(const Receipt& r, std::string& out);

// Slots numbered 0, 1, 2, ... in the order they were opened; completed ones
// are taken out only as a contiguous prefix. A ring that grows by doubling: no
// allocation per slot (the producer opens one per message). Not thread-safe
// (the producer guards it with its mutex).
template <class T>
class InOrderBuffer {
 public:
  uint64_t open() {
    if (count_ == ring_.size()) grow();
    ring_[(head_ + count_) % ring_.size()].reset();
    ++count_;
    return base_ + count_ - 1;
  }
  void complete(uint64_t seq, T value) {
    assert(seq >= base_ && seq - base_ < count_);
    ring_[(head_ + (seq - base_)) % ring_.size()] = std::move(value);
  }
  // Moves the completed prefix to out; returns how many.
  size_t drain(std::vector<T>& out) {
    size_t n = 0;
    while (count_ > 0 && ring_[head_].has_value()) {
      out.push_back(std::move(*ring_[head_]));
      ring_[head_].reset();
      head_ = (head_ + 1) % ring_.size();
      --count_;
      ++base_;
      ++n;
    }
    return n;
  }
  // Open slots not yet drained (completed or not).
  size_t size() const { return count_; }
  bool empty() const { return count_ == 0; }

 private:
  void grow() {
    std::vector<std::optional<T>> bigger(std::max<size_t>(16, ring_.size() * 2));
    for (size_t i = 0; i < count_; ++i) bigger[i] = std::move(ring_[(head_ + i) % ring_.size()]);
    ring_ = std::move(bigger);
    head_ = 0;
  }

  uint64_t base_ = 0;  // the sequence number of the slot at head_
  size_t head_ = 0, count_ = 0;
  std::vector<std::optional<T>> ring_;
};

}  // namespace mq::client

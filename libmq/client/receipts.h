// Send receipts and the in-order buffer that releases them in input order
// even when acks arrive out of order (async mode, retries).
#pragma once

#include <cassert>
#include <cstdint>
#include <deque>
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
// are taken out only as a contiguous prefix. Not thread-safe (the producer
// guards it with its mutex).
template <class T>
class InOrderBuffer {
 public:
  uint64_t open() {
    slots_.emplace_back();
    return base_ + slots_.size() - 1;
  }
  void complete(uint64_t seq, T value) {
    assert(seq >= base_ && seq - base_ < slots_.size());
    slots_[seq - base_] = std::move(value);
  }
  // Moves the completed prefix to out; returns how many.
  size_t drain(std::vector<T>& out) {
    size_t n = 0;
    while (!slots_.empty() && slots_.front().has_value()) {
      out.push_back(std::move(*slots_.front()));
      slots_.pop_front();
      ++base_;
      ++n;
    }
    return n;
  }
  // Open slots not yet drained (completed or not).
  size_t size() const { return slots_.size(); }
  bool empty() const { return slots_.empty(); }

 private:
  uint64_t base_ = 0;
  std::deque<std::optional<T>> slots_;
};

}  // namespace mq::client

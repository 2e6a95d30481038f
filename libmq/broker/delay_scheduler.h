// Failed messages sent back by consumers: delayed redelivery through
// %RETRY%<group>, dead letters to %DLQ%<group>.
//
// A sent-back message is appended (durably, per the flush policy) to the
// internal topic %SCHEDULE%, queue = level - 1, with its due time and real
// topic in properties; attempt n uses delay level n (the last level repeats).
// Each level's delay is fixed, so every %SCHEDULE% queue is in due order:
// tick() moves the due head of each queue to its real topic and then advances
// that queue's progress (kept in the offset table under group %SCHEDULE%).
// A crash between the two redelivers once more; it never loses a message.
// Thread-safe; tick() is meant for one timer.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/offset_table.h"
#include "protocol/group_messages.h"
#include "storage/message_store.h"
#include "util/log_limit.h"
#include "util/parse.h"

namespace mq::broker {

inline constexpr const char* kScheduleGroup = "%SCHEDULE%";

// "1s 5s 10s ..." -> durations; invalid_argument names the bad item.
Result<std::vector<Millis>> parse_delay_levels(std::string_view text);
inline constexpr const char* kDefaultDelayLevels = "1s 5s 10s 30s 1m 2m 3m 4m 5m 6m 7m 8m 9m 10m 20m 30m 1h 2h";

class DelayScheduler {
 public:
  // ensure_topic(topic, queues): makes the broker's topic registry know an internal topic
  // (durably when it returns ok). tick() calls it for each real topic before moving
  // messages there, and moves nothing while it fails.
  DelayScheduler(storage::MessageStore& store, OffsetTable& offsets, std::vector<Millis> levels,
                 std::function<Status(const std::string&, uint32_t)> ensure_topic);

  // Builds the retry (or dead-letter) copy of req.record and appends it.
  // done(status) runs once it is stored per the flush policy.
  void send_back(const protocol::SendBackRequest& req, int64_t now_ms, std::function<void(Status)> done);
  // Moves due messages to their real topic.
  void tick(int64_t now_ms);
  size_t levels() const { return levels_.size(); }

 private:
  storage::MessageStore& store_;
  OffsetTable& offsets_;
  std::vector<Millis> levels_;
  std::function<Status(const std::string&, uint32_t)> ensure_topic_;
  size_t queues_ = 0;  // %SCHEDULE% queues drained: the levels, or more when an earlier run had more
  std::unique_ptr<std::atomic<bool>[]> busy_;
  LogLimit redelivery_log_;
};

}  // namespace mq::broker

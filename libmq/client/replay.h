// Reading a stored range of a topic for mq-replay, without any group: the
// range of every queue is fixed when planned (time bounds through the
// offset_for_time request, a binary search on the broker; the default end is
// the queue's max offset at that moment), then each queue is read with plain
// pulls (no long-poll) by a QueueCursor that holds one pull answer at a time.
//
// Also the pieces mq-replay needs around it: a token bucket for --rate, the
// provenance properties of a re-published message, and the cleaning of a
// dead letter before it is re-driven.
//
// Threading: everything here runs on the caller's thread (the channel's
// blocking call); not thread-safe.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "client/cluster.h"
#include "storage/record.h"

namespace mq::client {

// A bound of --from/--until: nothing, an offset (the same in every queue) or a time.
struct ReplayBound {
  enum class Kind { none, offset, time, back };  // back: `offset` messages before the end
  Kind kind = Kind::none;
  uint64_t offset = 0;
  int64_t ms = 0;
};

// "" = none, "earliest"/"latest" = the queue's first/end offset, digits = offset,
// "-N" = N messages before the end, otherwise a time as in parse_time.
Result<ReplayBound> parse_replay_bound(std::string_view text, int64_t now);

struct ReplayRange {
  std::string topic;
  std::optional<uint32_t> queue;  // --queue
  ReplayBound from, until;
  std::vector<std::string> tags;  // exact tags (any of), empty = all
  std::optional<std::string> key;
  uint32_t max_msgs = 512;
  uint32_t max_bytes = 4u << 20;
  Millis timeout{3000};
};

// One queue's fixed range [begin, end) on one broker.
struct ReplayQueue {
  size_t node = 0;
  uint32_t queue = 0;
  uint64_t begin = 0, end = 0;
  std::string broker;  // the queue's master (the one a slave read from names)
};

// Resolves the bounds on every read source of the cluster. A topic that does
// not exist anywhere gives no queues (not an error); an unreachable source is.
Result<std::vector<ReplayQueue>> plan_replay(Cluster& cluster, const ReplayRange& range);

// Reads one queue's range in offset order, skipping messages the filters
// (tags, key) reject. peek() fetches when its buffer is used up. Holds views
// into its own buffer: do not move a cursor once peek() was called.
class QueueCursor {
 public:
  QueueCursor(Cluster& cluster, const ReplayRange& range, ReplayQueue q);

  // The current message, nullptr at the end of the range. Fails when a pull fails.
  Result<const storage::RecordView*> peek();
  void advance() { have_ = false; }
  const ReplayQueue& queue() const { return q_; }
  // The first offset not yet taken: everything before it was handed out by
  // peek() and advanced past, or skipped by the filters.
  uint64_t position() const { return have_ ? cur_.offset : next_; }

 private:
  Status fetch();
  bool accept(const storage::RecordView& rv) const;

  Cluster& cluster_;
  const ReplayRange& range_;
  ReplayQueue q_;
  std::vector<uint32_t> tag_hashes_;
  uint64_t next_ = 0;  // next offset to look at
  std::string buf_;
  std::string_view rest_;
  storage::RecordView cur_;
  bool have_ = false;
  bool done_ = false;
};

// Calls on_message for every message of every queue: queue after queue, or
// (merge) all queues interleaved by store time (k-way merge; ties by queue
// order). on_message gets the queue's ReplayQueue::broker too and returns false to
// stop (ok).
Status read_replay(std::vector<QueueCursor>& cursors, bool merge,
                   const std::function<bool(const storage::RecordView&, std::string_view broker)>& on_message);

// Index of the cursor whose head is oldest (store time, then position); for
// the merge, exposed for tests. heads[i] = nullopt when cursor i is done.
// Returns heads.size() when every cursor is done.
size_t pick_oldest(const std::vector<std::optional<int64_t>>& heads);

// The longest pause --rate may ask for between two messages: the smallest
// rate is 1/kMaxRateInterval (about 0.0000116 a second, one a day).
inline constexpr std::chrono::seconds kMaxRateInterval{86400};

// Token bucket: `rate` tokens a second, at most `burst` kept. rate 0 = no limit.
// A wait is never longer than kMaxRateInterval (a lower rate waits that long, then again).
class RateLimiter {
 public:
  using Clock = std::chrono::steady_clock;
  explicit RateLimiter(double rate, double burst = 1.0, Clock::time_point start = Clock::now());
  // How long to wait before one token is available at `now` (0 = take it now);
  // takes the token when it returns 0.
  Clock::duration try_take(Clock::time_point now);
  // Sleeps as needed, then takes one token.
  void take();

 private:
  double rate_, burst_, tokens_;
  Clock::time_point last_;
};

// Provenance property names added to re-published messages.
inline constexpr std::string_view kPropReplayOriginTopic = "mq.replay.origin_topic";
inline constexpr std::string_view kPropReplayOriginQueue = "mq.replay.origin_queue";
inline constexpr std::string_view kPropReplayOriginOffset = "mq.replay.origin_offset";
inline constexpr std::string_view kPropReplayOriginId = "mq.replay.origin_id";
inline constexpr std::string_view kPropReplayedAt = "mq.replay.replayed_at";

// The message to publish again: body, key, tag and properties of the
// original plus the provenance properties; a fresh id (zero = filled in by the
// producer), reconsume 0. redrive: a dead letter, whose broker properties
// ('%'-prefixed) are dropped and which is marked %REDRIVEN.
storage::Message replay_message(const storage::RecordView& rv, int64_t now, bool redrive);

// The redrive bookkeeping group of a dead-letter group ("redrive.G"): its
// offset on %DLQ%G queue q is the first dead letter not yet re-driven.
std::string redrive_group(std::string_view group);

// The offsets of `group` on (topic, queue) of one broker; -1 = none.
Result<std::vector<int64_t>> query_group_offsets(Cluster& cluster, size_t node, const std::string& group,
                                                 const std::string& topic, const std::vector<uint32_t>& queues,
                                                 Millis timeout);

}  // namespace mq::client

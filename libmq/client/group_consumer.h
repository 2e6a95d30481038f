// mq-consume -g GROUP: at-least-once consumption as a member of a consumer
// group (SPEC "Consumer").
//
// Every master coordinates its own queues: the member heartbeats to each
// (every second), pulls only the queues the broker assigned to it (topic and
// %RETRY%<group>), tracks in-flight messages per queue (ProcessQueue),
// commits the lowest unfinished offset every commit_interval and on every
// clean exit, and bounds the in-flight span. A message is finished once
// written to stdout (no exec) or once its command exits 0; a failed one is
// sent back to the broker for delayed retry (or straight to the dead-letter
// queue on exit 65); if the send-back fails it is retried locally, never
// dropped. orderly: one message at a time per queue, failures retried in
// place after their delay, dead-lettered after max_retries.
//
// Failover: a master that misses two heartbeats is replaced by its slave
// (Cluster::pair_of) for every request of that pair; the queues held keep
// their position, the slave assigns them and takes the commits. The master
// is probed with hello every 2 s and serves again once it answers.
//
// Threading: run() drives everything on the calling thread; io callbacks
// and exec workers hand results over through an event queue.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "client/cluster.h"
#include "client/tail.h"
#include "storage/record.h"

namespace mq::client {

struct GroupOptions {
  std::string group;
  std::string topic;
  FromKind from = FromKind::latest;  // for queues the group has no offset for yet
  uint64_t from_offset = 0;  // offset: that offset; back: how many before the end
  int64_t from_ms = 0;
  uint64_t count = 0;      // -n: stop after this many finished messages (0 = no limit)
  bool to_end = false;     // -e: stop once every assigned queue is caught up and nothing is in flight
  std::vector<std::string> tags;
  std::string exec;        // empty: on_message writes the message
  int concurrency = 1;
  bool orderly = false;
  uint64_t max_span = 2000;
  size_t max_buffered_msgs = 1000;   // per queue
  size_t max_buffered_bytes = 100u << 20;
  Millis consume_timeout{15 * 60 * 1000};
  uint32_t max_retries = 16;
  Millis commit_interval{5000};
  // On stop, how long running commands may still finish before they are
  // terminated (their messages stay uncommitted and are delivered again).
  Millis stop_grace{5000};
  Millis heartbeat_interval{1000};
  Millis request_timeout{3000};
  uint32_t wait_ms = 1000;  // long-poll
  std::vector<Millis> orderly_delays;  // in-place retry delays (orderly); default SPEC's levels
};

struct GroupStats {
  uint64_t consumed = 0, failed = 0, dead_lettered = 0, commits = 0;
};

class GroupConsumer {
 public:
  GroupConsumer(Cluster& cluster, GroupOptions opt);
  ~GroupConsumer();

  // Without exec: on_message formats the message into the output and returns
  // the output position (bytes) its end will have, or nullopt to stop (stdout
  // closed); written() says how many output bytes were handed to write(). A
  // message is finished only once written() reached its end, so a closed
  // stdout never commits what it did not take.
  // on_idle flushes output; false = stop. Returns ok on a normal end (count or
  // to_end reached, stop flag, output closed) after the final commit.
  // The message and the address of the master whose queue it is.
  using OnMessage = std::function<std::optional<uint64_t>(const storage::RecordView&, std::string_view broker)>;
  Status run(const OnMessage& on_message, const std::function<uint64_t()>& written,
             const std::function<bool()>& on_idle, const std::atomic<bool>& stop);
  GroupStats stats() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace mq::client

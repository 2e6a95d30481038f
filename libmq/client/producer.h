// The producer: sends messages of one topic to the masters of a Cluster.
//
// Modes: sync (each message acked before the next is sent; stdin order is
// queue order), async (up to `window` messages unreported, batched into send
// frames of up to batch_msgs / batch_bytes; flush() sends a partial batch),
// oneway (kFlagOneway, no ack: done once written to the socket; only a batch that
// could not be written at all, no connection, is tried again).
// A failed attempt (connection, timeout, NOT_MASTER, BUSY, DISK_FULL, ...) is
// retried up to `retries` times within `timeout` of the submit, at once on
// another master when there is one (the failing master is avoided for a
// while), else on the same master after retry_pause(). The message id never
// changes. FLUSH_DISK_TIMEOUT / FLUSH_SLAVE_TIMEOUT /
// SLAVE_NOT_AVAILABLE are reported as they are, not re-sent.
//
// Memory: at most `window` messages are held (sent or waiting to be reported).
// Threading: submit/flush/finish from one thread; acks arrive on the io thread.
#pragma once

#include <atomic>
#include <condition_variable>
#include <memory>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "client/cluster.h"
#include "client/queue_selector.h"
#include "client/receipts.h"
#include "storage/record.h"

namespace mq::client {

enum class SendMode { sync, async, oneway };

struct ProducerOptions {
  SendMode mode = SendMode::async;
  size_t window = 1024;
  int retries = 2;
  Millis timeout{3000};
  std::optional<uint32_t> queue;  // --queue N
  size_t batch_msgs = 256;
  size_t batch_bytes = 1u << 20;
  int64_t avoid_ms = 30000;       // fault avoidance after a connection failure
};

struct ProducerStats {
  uint64_t submitted = 0, acked = 0, failed = 0, maybe_stored = 0;
  std::string first_error;  // the first failure's cause, for the summary
};

// The pause before retry number `attempt` (1, 2, ...) on the master that
// just failed: 100ms, doubling up to 1s, at most half of `budget_left_ms`.
Millis retry_pause(int attempt, int64_t budget_left_ms);

class Producer {
 public:
  // Learns the topic's queue count on every reachable master (topic_info;
  // a topic that does not exist yet gets the broker's default_queues).
  static Result<std::unique_ptr<Producer>> create(Cluster& cluster, std::string topic, ProducerOptions opt);
  ~Producer();

  // Queues one message (topic, queue and, when unset, id are filled in).
  // Blocks while the window is full. Receipts completed so far are appended
  // to `ready`, in input order.
  void submit(uint64_t line, storage::Message msg, std::vector<Receipt>& ready);
  // An input line that is not sent (malformed, too large): its FAILED receipt
  // (no id, broker, queue or offset) takes its place in input order. Not
  // counted in stats().
  void reject(uint64_t line, std::vector<Receipt>& ready);
  // Sends the partial batches now (the input has nothing more right now).
  void flush();
  // Appends completed receipts without waiting.
  void poll(std::vector<Receipt>& ready);
  // Flushes and waits for every receipt.
  void finish(std::vector<Receipt>& ready);

  ProducerStats stats() const;
  // Messages submitted and not yet completed.
  uint64_t outstanding() const;
  // The smallest --max-message-size of the masters (0 when unknown).
  uint32_t max_message_size() const { return max_message_size_; }

 private:
  struct Pending {
    uint64_t seq = 0;
    uint64_t line = 0;
    storage::MessageId id{};
    std::optional<std::string> key;
    size_t at = 0, len = 0;  // its record in the batch's `records`
  };
  struct Batch {
    size_t broker = 0;
    std::vector<Pending> msgs;
    // The records of msgs, in their order, encoded in place: no string per message.
    std::string records;
    int attempt = 0;
    int64_t deadline_ms = 0;
  };

  Producer(Cluster& cluster, std::string topic, ProducerOptions opt, QueueSelector selector);
  std::shared_ptr<Batch> new_batch(size_t broker, size_t limit) const;
  void send_batch(std::shared_ptr<Batch> b);
  void on_response(std::shared_ptr<Batch> b, Result<protocol::Frame> r);
  // unreachable: the attempt failed because no connection could be made;
  // full: the broker answered DISK_FULL.
  void retry_or_fail(std::shared_ptr<Batch> b, const Status& why, bool maybe_stored, bool unreachable = false,
                     bool full = false);
  void complete(const Pending& p, Receipt r);
  // Completes a whole batch under one lock and one wake-up: rs[i] is msgs[i]'s receipt.
  void complete_all(const std::vector<Pending>& msgs, std::vector<Receipt>& rs);
  void complete_locked(const Pending& p, Receipt r);  // mu_ held; the caller notifies cv_
  Route route_for(const Pending& p, std::optional<size_t> exclude);

  Cluster& cluster_;
  std::string topic_;
  ProducerOptions opt_;
  QueueSelector selector_;
  uint32_t max_message_size_ = 0;
  std::vector<std::shared_ptr<Batch>> open_;  // per cluster node; main thread only

  mutable std::mutex mu_;
  std::condition_variable cv_;
  InOrderBuffer<Receipt> receipts_;  // guarded by mu_
  uint64_t outstanding_ = 0;         // submitted, not completed; guarded by mu_
  ProducerStats stats_;              // guarded by mu_
  // A message failed every attempt because no master could be reached, and no
  // send succeeded since: the next ones get one attempt each, without pauses,
  // so a broker that is gone fails the rest of the input in seconds, not hours.
  std::atomic<bool> unreachable_{false};
  // Likewise for a full disk: a message failed every attempt with DISK_FULL and
  // no send succeeded since. The next ones try other masters only, so a full
  // disk fails the input at one round trip per batch, not a third of a second.
  std::atomic<bool> full_{false};

  // Master `b` cannot be reached: a listed slave of it that answers hello as a master now
  // (promoted) takes its queues (QueueSelector::substitute). Asked once a second at most.
  void look_for_promotion(size_t b);
  struct Alive {  // what a late hello answer may touch once the producer is gone: nothing
    std::mutex mu;
    Producer* producer = nullptr;
  };
  std::shared_ptr<Alive> alive_;
  std::mutex promotion_mu_;
  std::map<size_t, int64_t> promotion_next_ms_;  // guarded by promotion_mu_

  // Brokers that let a send's last attempt time out with no answer (stopped, or
  // cut off by the network while the connection stays up) are asked hello at
  // once, on a new connection (net::Channel drops a silent one). One that lets
  // that time out too is hung: a send to it fails at once, not sent, while a
  // hello every --timeout at most waits for it to answer again. Without it each
  // message waited --timeout (hours for a long input) where a broker that is
  // gone fails the rest in seconds.
  void mark_suspect(size_t b);
  bool hung(size_t b);     // its hello timed out too
  bool watched(size_t b);  // suspect or hung: a hello is out or due
  void clear_hung(size_t b);
  void probe_hung(size_t b);  // one hello; again until it is answered
  std::mutex hung_mu_;
  std::map<size_t, bool> hung_;  // broker -> its hello timed out too; guarded by hung_mu_
};

}  // namespace mq::client

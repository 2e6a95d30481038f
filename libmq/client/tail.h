// The read-only tail of mq-consume (no group, nothing committed): for every
// queue of the topic on every read source (masters, or the slave of a master
// that is down), pull with long-poll, several queues in flight at once.
//
// --from earliest|latest|OFFSET|TIME picks each queue's start (TIME through
// offset_for_time; latest = the queue's max offset at start; a topic that
// appears later is read from its beginning). to_end (-e) stops once every
// queue was found caught up (a pull returning next_offset >= max_offset); a
// topic that does not exist then has nothing to read. Without to_end a
// missing topic is looked up again every 100 ms.
//
// Failover: each read source is a master-slave pair (Cluster::pair_of). A
// pull that fails (refused, reset, timed out) moves the pair to its next
// broker (master -> slave -> master ...); every queue continues there at its
// own next offset (identical logs), so nothing is printed twice or skipped.
// While a slave serves, the master is probed every 2 s and takes over again
// once it answers as a master.
//
// A listed broker that is down at start with no slave up (Cluster::unaccounted)
// is warned about and asked again every second; once it answers as a master its
// queues are read from --from (latest: what was stored since the tail started).
// With to_end the run reads the others to their end and fails naming it.
//
// Threading: run() on one thread; pull answers arrive on the io thread and
// are handed over through a queue; callbacks run on run()'s thread.
#pragma once

#include <atomic>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "client/cluster.h"
#include "storage/record.h"

namespace mq::client {

// back: from_offset messages before each queue's end (--from -N).
enum class FromKind { earliest, latest, offset, time, back };

struct TailOptions {
  std::string topic;
  FromKind from = FromKind::latest;
  uint64_t from_offset = 0;  // offset: that offset; back: how many before the end
  int64_t from_ms = 0;
  bool to_end = false;
  std::vector<std::string> tags;  // empty = every message
  uint32_t wait_ms = 1000;        // long-poll
  uint32_t max_msgs = 1000;
  uint32_t max_bytes = 4u << 20;
  Millis timeout{3000};           // per request, on top of the long-poll
};

// "A||B || C" -> {"A","B","C"}; empty parts are errors.
Result<std::vector<std::string>> split_tags(std::string_view expr);

class Tail {
 public:
  Tail(Cluster& cluster, TailOptions opt);
  ~Tail();

  // on_message gets each message with the address of the master whose queue it is (as
  // listed or learnt, also while its slave serves it) and returns false to stop (e.g. -n
  // reached, stdout closed);
  // on_idle is called when no more messages are immediately available
  // (flush the output there; also called about every 100ms while idle) and
  // returns false to stop. Returns ok on a
  // normal end (to_end reached, stop flag, a callback said stop).
  Status run(const std::function<bool(const storage::RecordView&, std::string_view broker)>& on_message,
             const std::function<bool()>& on_idle, const std::atomic<bool>& stop);

 private:
  struct Shared;
  struct Source {
    std::vector<size_t> route;  // the pair's nodes, master first
    size_t serving = 0;         // the node pulls go to now
    bool resolved = false;
    int64_t next_probe_ms = 0;  // topic lookup retry (unresolved)
    bool warned = false;
    size_t failures = 0;        // failed requests in a row, across the route
    int64_t next_master_probe_ms = 0;
    bool probing = false;
    bool absent = false;        // down at start, no slave up: hello until it answers
    bool first_pending = true;  // no topic lookup answered yet: --from applies
  };
  struct QueueState {
    size_t source = 0;
    uint32_t queue = 0;
    uint64_t next = 0;
    bool in_flight = false;
    size_t asked = 0;  // the node the pull in flight went to
    bool done = false;
    int64_t retry_at_ms = 0;
  };

  // Looks the topic up on source s and adds its queues. first: at start
  // (latest means max offset) rather than a topic appearing later.
  Status resolve(Source& s, bool first);
  void issue_pull(size_t qi);
  // A request to `failed` (a node of s's route) failed: move s to the next
  // node of its route when `failed` still serves. Returns true when the
  // route was tried all round without success (wait before trying again).
  bool fail_over(Source& s, size_t failed);
  void switch_to(Source& s, size_t to);
  void probe_master(size_t si, int64_t now);
  void send_probe(size_t si, size_t node);  // a hello; its answer comes back in Shared::probes
  Status give_up_queue(QueueState& q, Status why);
  Status handle(size_t qi, Result<protocol::Frame> r, const std::function<bool(const storage::RecordView&, std::string_view broker)>& on_message,
                bool& stop);

  Cluster& cluster_;
  TailOptions opt_;
  std::vector<uint32_t> tag_hashes_;
  std::vector<Source> sources_;
  std::vector<QueueState> queues_;
  std::shared_ptr<Shared> shared_;
  // With to_end: the first queue that could not be read to its end (a
  // damaged record); the others are read to theirs, then run() returns it.
  Status unread_;
  Status absent_;          // with to_end: the brokers down at start, run() ends with it
  int64_t start_ms_ = 0;   // run()'s start: "latest" for a broker that answers later
  bool started_ = false;   // past run()'s first lookups
};

}  // namespace mq::client

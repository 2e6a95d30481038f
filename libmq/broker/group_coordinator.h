// Consumer-group membership and queue assignment, decided by the broker for
// its own queues. Members heartbeat (every second); a member is gone when its
// connection closes (kill -9 shows up at once) or after kSessionTimeout
// without a heartbeat. Assignment: per topic, the sorted queues are split
// evenly over the sorted members subscribing to it.
//
// Hand-over: a queue moves to its new member only after the old one released
// it (reported in a heartbeat) or is gone, so after a rebalance no queue is
// processed by two members at once. A member reporting progress on a queue
// nobody owns here (this broker restarted, or the group just moved to it from
// its master) owns it, and hands it over the same way; for kSettleMs after
// such a claim nothing is handed out or taken back, so the group's other
// members arriving meanwhile claim their own queues rather than see them
// given to the first one. A member must stop processing every queue
// that is not in its latest `assigned` list, commit, and report it released.
// Thread-safe.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "protocol/group_messages.h"

namespace mq::broker {

using protocol::kSessionTimeoutMs;
inline constexpr int64_t kSettleMs = 2500;  // members heartbeat every second

class GroupCoordinator {
 public:
  // queue_count(topic): queues of a topic on this broker (0 when it does not exist).
  explicit GroupCoordinator(std::function<uint32_t(const std::string&)> queue_count)
      : queue_count_(std::move(queue_count)) {}

  protocol::HeartbeatResponse heartbeat(const protocol::HeartbeatRequest& req, uint64_t connection,
                                        int64_t now_ms);
  // Every member that heartbeated over this connection is gone.
  void connection_closed(uint64_t connection);
  // Drops members silent for kSessionTimeoutMs.
  void expire(int64_t now_ms);

  // Whether client_id currently owns q in group (commits from others are refused).
  bool owns(const std::string& group, const std::string& client_id, const protocol::QueueRef& q) const;
  bool has_members(const std::string& group) const;
  // An admin reset changed q's offset: its owner is told at its next heartbeat.
  void note_reset(const std::string& group, const protocol::QueueRef& q);

  std::vector<std::string> groups() const;
  // Members and their reported progress (offsets are filled in by the caller).
  protocol::GroupInfo info(const std::string& group, int64_t now_ms) const;

 private:
  struct Member {
    std::string host;
    uint32_t pid = 0;
    uint64_t connection = 0;
    int64_t last_seen = 0;
    std::set<std::string> topics;
    std::vector<protocol::QueueProgress> progress;
  };
  struct Group {
    std::map<std::string, Member> members;                   // by client_id
    std::map<protocol::QueueRef, std::string> owner;         // current owner
    std::set<std::pair<std::string, protocol::QueueRef>> resets;  // (client_id, queue) to tell
    uint64_t generation = 0;
    int64_t settle_until = 0;  // queues are claimed, not handed out, until then
  };
  std::map<protocol::QueueRef, std::string> desired(const Group& g) const;
  void drop_member(Group& g, const std::string& client_id);

  std::function<uint32_t(const std::string&)> queue_count_;
  mutable std::mutex mu_;
  std::map<std::string, Group> groups_;
};

}  // namespace mq::broker

#include "broker/group_coordinator.h"

namespace mq::broker {

std::map<protocol::QueueRef, std::string> GroupCoordinator::desired(const Group& g) const {
  std::map<std::string, std::vector<std::string>> by_topic;  // topic -> sorted members
  for (auto& [id, m] : g.members)
    for (auto& t : m.topics) by_topic[t].push_back(id);
  std::map<protocol::QueueRef, std::string> out;
  for (auto& [topic, members] : by_topic) {
    uint32_t n = queue_count_(topic);
    size_t m = members.size();
    for (uint32_t q = 0; q < n; ++q) {
      // member i gets queues [i*n/m, (i+1)*n/m): contiguous and as even as possible
      size_t idx = static_cast<size_t>(q) * m / n;
      out[{topic, q}] = members[idx];
    }
  }
  return out;
}

void GroupCoordinator::drop_member(Group& g, const std::string& client_id) {
  g.members.erase(client_id);
  for (auto it = g.owner.begin(); it != g.owner.end();)
    it = it->second == client_id ? g.owner.erase(it) : std::next(it);
  ++g.generation;
}

protocol::HeartbeatResponse GroupCoordinator::heartbeat(const protocol::HeartbeatRequest& req,
                                                        uint64_t connection, int64_t now_ms) {
  std::lock_guard lk(mu_);
  auto& g = groups_[req.group];
  auto [it, fresh] = g.members.try_emplace(req.client_id);
  auto& m = it->second;
  std::set<std::string> topics(req.topics.begin(), req.topics.end());
  if (fresh || topics != m.topics) ++g.generation;
  m.host = req.host;
  m.pid = req.pid;
  m.connection = connection;
  m.last_seen = now_ms;
  m.topics = std::move(topics);
  m.progress = req.progress;
  for (auto& q : req.released) {
    auto o = g.owner.find(q);
    if (o != g.owner.end() && o->second == req.client_id) {
      g.owner.erase(o);
      ++g.generation;
    }
  }
  // A queue nobody owns here that the member reports it holds (a broker that
  // restarted, a slave the group moved to) stays with it: it lets go of it,
  // with a commit, if the assignment wants it elsewhere. Given straight to
  // another member instead, that one would start at an offset this broker
  // has from before, under the holder's feet.
  // Such a claim starts a settling time: the group's other members, on their
  // way here too, claim theirs meanwhile; nobody is asked to give a queue up
  // and no unclaimed queue is handed out until it ends.
  for (auto& p : req.progress)
    if (!g.owner.count(p.q) && m.topics.count(p.q.topic) && p.q.queue < queue_count_(p.q.topic)) {
      g.owner[p.q] = req.client_id;
      g.settle_until = std::max(g.settle_until, now_ms + kSettleMs);
      ++g.generation;
    }
  bool settling = now_ms < g.settle_until;
  auto want = desired(g);
  // Hand queues to their desired owner once nobody holds them.
  if (!settling)
    for (auto& [q, who] : want)
      if (!g.owner.count(q)) g.owner[q] = who;
  // Owners of queues that no longer exist in the assignment (topic gone) release implicitly.
  protocol::HeartbeatResponse r;
  r.generation = g.generation;
  r.members = static_cast<uint32_t>(g.members.size());
  for (auto& [q, who] : g.owner)
    if (who == req.client_id) {
      auto w = want.find(q);
      if (w != want.end() && (settling || w->second == req.client_id)) r.assigned.push_back(q);
    }
  for (auto rit = g.resets.begin(); rit != g.resets.end();) {
    if (rit->first == req.client_id) {
      r.reset.push_back(rit->second);
      rit = g.resets.erase(rit);
    } else {
      ++rit;
    }
  }
  return r;
}

void GroupCoordinator::connection_closed(uint64_t connection) {
  std::lock_guard lk(mu_);
  for (auto& [name, g] : groups_) {
    std::vector<std::string> gone;
    for (auto& [id, m] : g.members)
      if (m.connection == connection) gone.push_back(id);
    for (auto& id : gone) drop_member(g, id);
  }
}

void GroupCoordinator::expire(int64_t now_ms) {
  std::lock_guard lk(mu_);
  for (auto& [name, g] : groups_) {
    std::vector<std::string> gone;
    for (auto& [id, m] : g.members)
      if (now_ms - m.last_seen > kSessionTimeoutMs) gone.push_back(id);
    for (auto& id : gone) drop_member(g, id);
  }
}

bool GroupCoordinator::owns(const std::string& group, const std::string& client_id,
                            const protocol::QueueRef& q) const {
  std::lock_guard lk(mu_);
  auto g = groups_.find(group);
  if (g == groups_.end()) return false;
  auto o = g->second.owner.find(q);
  return o != g->second.owner.end() && o->second == client_id;
}

bool GroupCoordinator::has_members(const std::string& group) const {
  std::lock_guard lk(mu_);
  auto g = groups_.find(group);
  return g != groups_.end() && !g->second.members.empty();
}

void GroupCoordinator::note_reset(const std::string& group, const protocol::QueueRef& q) {
  std::lock_guard lk(mu_);
  auto g = groups_.find(group);
  if (g == groups_.end()) return;
  auto o = g->second.owner.find(q);
  if (o != g->second.owner.end()) g->second.resets.insert({o->second, q});
}

std::vector<std::string> GroupCoordinator::groups() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (auto& [name, g] : groups_)
    if (!g.members.empty()) out.push_back(name);
  return out;
}

protocol::GroupInfo GroupCoordinator::info(const std::string& group, int64_t now_ms) const {
  std::lock_guard lk(mu_);
  protocol::GroupInfo out;
  out.group = group;
  auto g = groups_.find(group);
  if (g == groups_.end()) return out;
  for (auto& [id, m] : g->second.members) {
    protocol::MemberInfo mi;
    mi.client_id = id;
    mi.host = m.host;
    mi.pid = m.pid;
    mi.idle_ms = static_cast<uint64_t>(std::max<int64_t>(0, now_ms - m.last_seen));
    for (auto& [q, who] : g->second.owner)
      if (who == id) mi.owned.push_back(q);
    out.members.push_back(std::move(mi));
    out.progress.insert(out.progress.end(), m.progress.begin(), m.progress.end());
  }
  return out;
}

}  // namespace mq::broker

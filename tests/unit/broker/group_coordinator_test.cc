#include <catch2/catch.hpp>

#include <set>

#include "broker/group_coordinator.h"

using mq::broker::GroupCoordinator;
using mq::protocol::HeartbeatRequest;
using mq::protocol::QueueRef;

namespace {
HeartbeatRequest hb(const std::string& id, std::vector<QueueRef> released = {}) {
  HeartbeatRequest r;
  r.group = "g";
  r.client_id = id;
  r.host = "h";
  r.pid = 1;
  r.topics = {"t"};
  r.released = std::move(released);
  return r;
}
std::set<uint32_t> queues(const std::vector<QueueRef>& v) {
  std::set<uint32_t> s;
  for (auto& q : v) s.insert(q.queue);
  return s;
}
}  // namespace

TEST_CASE("queues are split evenly and handed over only after release", "[broker]") {
  GroupCoordinator c([](const std::string&) { return 4u; });
  auto a1 = c.heartbeat(hb("a"), 1, 0);
  CHECK(queues(a1.assigned) == std::set<uint32_t>{0, 1, 2, 3});
  auto b1 = c.heartbeat(hb("b"), 2, 10);
  CHECK(b1.assigned.empty());  // a still holds everything
  auto a2 = c.heartbeat(hb("a"), 1, 20);
  CHECK(queues(a2.assigned) == std::set<uint32_t>{0, 1});  // a must drop 2 and 3
  CHECK(c.owns("g", "a", {"t", 2}));
  auto a3 = c.heartbeat(hb("a", {{"t", 2}, {"t", 3}}), 1, 30);
  CHECK(queues(a3.assigned) == std::set<uint32_t>{0, 1});
  auto b2 = c.heartbeat(hb("b"), 2, 40);
  CHECK(queues(b2.assigned) == std::set<uint32_t>{2, 3});
  CHECK_FALSE(c.owns("g", "a", {"t", 2}));
  CHECK(c.owns("g", "b", {"t", 2}));
}

TEST_CASE("a member whose connection closes loses its queues at once", "[broker]") {
  GroupCoordinator c([](const std::string&) { return 3u; });
  c.heartbeat(hb("a"), 1, 0);
  c.heartbeat(hb("b"), 2, 0);
  c.heartbeat(hb("a", {{"t", 2}}), 1, 0);
  c.heartbeat(hb("b"), 2, 0);
  c.connection_closed(2);
  auto a = c.heartbeat(hb("a"), 1, 100);
  CHECK(queues(a.assigned) == std::set<uint32_t>{0, 1, 2});
  CHECK(a.members == 1);
}

TEST_CASE("silent members expire after the session timeout", "[broker]") {
  GroupCoordinator c([](const std::string&) { return 2u; });
  c.heartbeat(hb("a"), 1, 0);
  c.heartbeat(hb("b"), 2, 0);
  c.expire(mq::broker::kSessionTimeoutMs + 1);
  CHECK_FALSE(c.has_members("g"));
}

TEST_CASE("the owner of a reset queue is told at its next heartbeat", "[broker]") {
  GroupCoordinator c([](const std::string&) { return 1u; });
  c.heartbeat(hb("a"), 1, 0);
  c.note_reset("g", {"t", 0});
  auto r = c.heartbeat(hb("a"), 1, 1);
  REQUIRE(r.reset.size() == 1);
  CHECK(r.reset[0].queue == 0);
  CHECK(c.heartbeat(hb("a"), 1, 2).reset.empty());
}

namespace {
HeartbeatRequest holding(const std::string& id, std::vector<uint32_t> held) {
  auto r = hb(id);
  for (auto q : held) {
    mq::protocol::QueueProgress p;
    p.q = {"t", q};
    p.committed = 100;
    r.progress.push_back(p);
  }
  return r;
}
}  // namespace

TEST_CASE("members arriving with their queues keep them; nothing moves while they settle", "[broker]") {
  // A broker that restarted (or a slave the group moved to) knows no members.
  // Were the first member handed every queue, the others' queues would start
  // again at this broker's older offsets while their holders still run them.
  GroupCoordinator c([](const std::string&) { return 4u; });
  auto c1 = c.heartbeat(holding("c", {3}), 3, 0);
  CHECK(queues(c1.assigned) == std::set<uint32_t>{3});  // not 0-2: their holders are on their way
  auto a1 = c.heartbeat(holding("a", {0, 1}), 1, 300);
  CHECK(queues(a1.assigned) == std::set<uint32_t>{0, 1});
  // with a and c only, c would be asked for 3's neighbours and a for 3: not while settling
  auto c2 = c.heartbeat(holding("c", {3}), 3, 1000);
  CHECK(queues(c2.assigned) == std::set<uint32_t>{3});
  auto b1 = c.heartbeat(hb("b"), 2, 1200);  // b's queue 2 is not ready yet: it claims nothing
  CHECK(b1.assigned.empty());
  CHECK_FALSE(c.owns("g", "c", {"t", 2}));
  // settled (2.5 s after the last claim): the unclaimed queue goes to its member
  int64_t later = 300 + mq::broker::kSettleMs;
  CHECK(queues(c.heartbeat(hb("b"), 2, later).assigned) == std::set<uint32_t>{2});
  CHECK(queues(c.heartbeat(holding("a", {0, 1}), 1, later).assigned) == std::set<uint32_t>{0, 1});
  CHECK(queues(c.heartbeat(holding("c", {3}), 3, later).assigned) == std::set<uint32_t>{3});
}

TEST_CASE("a claim on a queue another member owns is no claim", "[broker]") {
  GroupCoordinator c([](const std::string&) { return 2u; });
  auto a = c.heartbeat(hb("a"), 1, 0);
  CHECK(queues(a.assigned) == std::set<uint32_t>{0, 1});
  // b thinks it holds 1 (it was frozen, expired elsewhere, ...): a keeps it
  auto b = c.heartbeat(holding("b", {1}), 2, 10);
  CHECK(b.assigned.empty());
  CHECK(c.owns("g", "a", {"t", 1}));
  // a claim of a queue the topic does not have is ignored
  auto x = c.heartbeat(holding("x", {7}), 3, 20);
  CHECK(x.assigned.empty());
}

TEST_CASE("after settling, a claimed queue the assignment wants elsewhere is handed over", "[broker]") {
  GroupCoordinator c([](const std::string&) { return 2u; });
  // "b" claims both; with "a" there too, one of them belongs to a
  CHECK(queues(c.heartbeat(holding("b", {0, 1}), 2, 0).assigned) == std::set<uint32_t>{0, 1});
  CHECK(c.heartbeat(hb("a"), 1, 100).assigned.empty());
  int64_t later = mq::broker::kSettleMs + 1;
  CHECK(queues(c.heartbeat(holding("b", {0, 1}), 2, later).assigned) == std::set<uint32_t>{1});
  CHECK(c.heartbeat(hb("a"), 1, later).assigned.empty());  // b still holds 0
  c.heartbeat(holding("b", {1}), 2, later + 10);            // (dropping 0: no longer reported)
  auto released = holding("b", {1});
  released.released = {{"t", 0}};
  c.heartbeat(released, 2, later + 20);
  CHECK(queues(c.heartbeat(hb("a"), 1, later + 30).assigned) == std::set<uint32_t>{0});
}

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

#include <catch2/catch.hpp>

#include "client/process_queue.h"

using mq::client::ProcessQueue;

TEST_CASE("commit offset is the lowest message still in flight", "[client]") {
  ProcessQueue pq(10);
  CHECK(pq.commit_offset() == 10);
  for (uint64_t o = 10; o < 15; ++o) pq.add(o, 0, 100);
  CHECK(pq.commit_offset() == 10);
  pq.finish(12);
  pq.finish(13);
  CHECK(pq.commit_offset() == 10);  // 10 still running holds the commit back
  pq.finish(10);
  CHECK(pq.commit_offset() == 11);
  pq.finish(11);
  CHECK(pq.commit_offset() == 14);  // 12 and 13 were already done
  pq.finish(14);
  CHECK(pq.commit_offset() == 15);
  CHECK(pq.in_flight() == 0);
}

TEST_CASE("span limit bounds pulling behind a slow message", "[client]") {
  ProcessQueue pq(0);
  const uint64_t max_span = 5;
  CHECK(pq.pull_budget(max_span) == 6);
  for (uint64_t o = 0; o <= 5; ++o) pq.add(o, 0, 1);
  CHECK(pq.span() == 5);
  CHECK(pq.pull_budget(max_span) == 0);
  CHECK_FALSE(pq.may_pull(max_span, 1000, 1 << 20));
  for (uint64_t o = 1; o <= 5; ++o) pq.finish(o);  // everything but the slow one
  CHECK_FALSE(pq.may_pull(max_span, 1000, 1 << 20));
  pq.finish(0);
  CHECK(pq.may_pull(max_span, 1000, 1 << 20));
  CHECK(pq.commit_offset() == 6);
}

TEST_CASE("message and byte caps stop pulling", "[client]") {
  ProcessQueue pq(0);
  pq.add(0, 0, 600);
  pq.add(1, 0, 600);
  CHECK_FALSE(pq.may_pull(2000, 2, 1 << 20));
  CHECK_FALSE(pq.may_pull(2000, 1000, 1000));
  CHECK(pq.may_pull(2000, 1000, 2000));
}

TEST_CASE("blocker reports the lowest in-flight message and what waits behind it", "[client]") {
  ProcessQueue pq(0);
  auto t0 = ProcessQueue::Clock::now();
  pq.add(0, 3, 1, t0);
  pq.add(1, 0, 1, t0);
  pq.add(2, 0, 1, t0);
  pq.finish(1);
  pq.finish(2);
  auto b = pq.blocker(t0 + std::chrono::seconds(7));
  CHECK(b.any);
  CHECK(b.offset == 0);
  CHECK(b.reconsume == 3);
  CHECK(b.finished_behind == 2);
  CHECK(b.age == std::chrono::seconds(7));
}

TEST_CASE("the largest --max-span does not wrap the pull budget to 0", "[client]") {
  ProcessQueue pq(0);
  CHECK(pq.may_pull(UINT64_MAX, 1000, 1 << 20));
  CHECK(pq.pull_budget(UINT64_MAX) == UINT64_MAX);
  pq.add(0, 0, 1);
  CHECK(pq.may_pull(UINT64_MAX, 1000, 1 << 20));
}

TEST_CASE("an orderly retry in place counts in the blocker's reconsume", "[client]") {
  ProcessQueue pq(0);
  pq.add(0, 0, 1);
  pq.add(1, 0, 1);
  pq.retried(0, 2);
  CHECK(pq.blocker().reconsume == 2);
  pq.retried(1, 5);  // not the blocker
  pq.finish(0);
  CHECK(pq.blocker().offset == 1);
  CHECK(pq.blocker().reconsume == 5);
  pq.retried(9, 1);  // unknown offsets are ignored
  CHECK(pq.in_flight() == 1);
}

TEST_CASE("filtered offsets advance the commit point and reset forgets in-flight state", "[client]") {
  ProcessQueue pq(0);
  pq.advance_to(50);
  CHECK(pq.commit_offset() == 50);
  pq.add(50, 0, 1);
  pq.add(40, 0, 1);  // behind next_pull: ignored
  CHECK(pq.in_flight() == 1);
  pq.reset(7);
  CHECK(pq.commit_offset() == 7);
  CHECK(pq.in_flight() == 0);
  pq.finish(50);  // finishing a forgotten message changes nothing
  CHECK(pq.commit_offset() == 7);
}

#include <catch2/catch.hpp>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "client/replay.h"
#include "protocol/group_messages.h"
#include "storage/record.h"

using namespace mq;
using client::RateLimiter;
using namespace std::chrono_literals;

namespace {

// Encodes m and returns its view (into buf).
storage::RecordView view_of(const storage::Message& m, std::string& buf) {
  buf.clear();
  storage::encode_record(m, buf);
  auto r = storage::parse_record(buf);
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("replay bounds are offsets when they are digits and times otherwise", "[client][replay]") {
  auto none = client::parse_replay_bound("", 0);
  REQUIRE(none);
  CHECK(none->kind == client::ReplayBound::Kind::none);
  auto off = client::parse_replay_bound("42", 0);
  REQUIRE(off);
  CHECK(off->kind == client::ReplayBound::Kind::offset);
  CHECK(off->offset == 42);
  auto at = client::parse_replay_bound("@1764000000", 0);
  REQUIRE(at);
  CHECK(at->kind == client::ReplayBound::Kind::time);
  CHECK(at->ms == 1764000000000);
  auto rel = client::parse_replay_bound("-15m", 1'000'000'000);
  REQUIRE(rel);
  CHECK(rel->ms == 1'000'000'000 - 15 * 60 * 1000);
  auto first = client::parse_replay_bound("earliest", 0);
  REQUIRE(first);
  CHECK((first->kind == client::ReplayBound::Kind::offset && first->offset == 0));
  auto end = client::parse_replay_bound("latest", 0);
  REQUIRE(end);
  CHECK((end->kind == client::ReplayBound::Kind::offset && end->offset == UINT64_MAX));
  auto back = client::parse_replay_bound("-5", 0);
  REQUIRE(back);
  CHECK((back->kind == client::ReplayBound::Kind::back && back->offset == 5));
  auto bad = client::parse_replay_bound("12x", 0);
  REQUIRE_FALSE(bad);
  CHECK(bad.status().code() == Code::invalid_argument);
}

TEST_CASE("the replay merge picks the oldest head and skips finished queues", "[client][replay]") {
  using H = std::vector<std::optional<int64_t>>;
  CHECK(client::pick_oldest(H{}) == 0);
  CHECK(client::pick_oldest(H{std::nullopt, std::nullopt}) == 2);
  CHECK(client::pick_oldest(H{30, 10, 20}) == 1);
  CHECK(client::pick_oldest(H{std::nullopt, 50, 40}) == 2);
  CHECK(client::pick_oldest(H{10, 10}) == 0);  // ties: queue order
}

TEST_CASE("the replay rate limiter paces one message per interval", "[client][replay]") {
  auto t0 = RateLimiter::Clock::time_point{} + 1h;
  RateLimiter lim(10, 1, t0);
  CHECK(lim.try_take(t0) == RateLimiter::Clock::duration::zero());
  auto wait = lim.try_take(t0);
  CHECK(wait > 90ms);
  CHECK(wait <= 100ms);
  CHECK(lim.try_take(t0 + 50ms) > 0ms);
  CHECK(lim.try_take(t0 + 100ms) == RateLimiter::Clock::duration::zero());
  // A long pause does not bank more than the burst.
  CHECK(lim.try_take(t0 + 10s) == RateLimiter::Clock::duration::zero());
  CHECK(lim.try_take(t0 + 10s) > 0ms);
  // 20 messages at 10/s need about 1.9 s.
  RateLimiter lim2(10, 1, t0);
  auto t = t0;
  for (int i = 0; i < 20; ++i) {
    for (auto w = lim2.try_take(t); w != RateLimiter::Clock::duration::zero(); w = lim2.try_take(t)) t += w;
  }
  CHECK(t - t0 >= 1850ms);
  CHECK(t - t0 <= 1950ms);
  RateLimiter unlimited(0, 1, t0);
  for (int i = 0; i < 1000; ++i) REQUIRE(unlimited.try_take(t0) == RateLimiter::Clock::duration::zero());
}

TEST_CASE("a tiny rate waits at most a day at a time, never a busy loop", "[client][replay]") {
  auto t0 = RateLimiter::Clock::time_point{} + 1h;
  for (double rate : {1e-300, 1e-20, 1.0 / 86400 / 10}) {
    INFO(rate);
    RateLimiter lim(rate, 1, t0);
    REQUIRE(lim.try_take(t0) == RateLimiter::Clock::duration::zero());
    auto wait = lim.try_take(t0);
    CHECK(wait == std::chrono::duration_cast<RateLimiter::Clock::duration>(client::kMaxRateInterval));
    // After that wait there is still no token, and the next wait is as long.
    CHECK(lim.try_take(t0 + wait) == wait);
  }
  // One a day: the wait is the whole day, and then it is taken.
  RateLimiter daily(1.0 / 86400, 1, t0);
  REQUIRE(daily.try_take(t0) == RateLimiter::Clock::duration::zero());
  auto wait = daily.try_take(t0);
  CHECK(wait > 86399s);
  CHECK(wait <= client::kMaxRateInterval);
  CHECK(daily.try_take(t0 + 86401s) == RateLimiter::Clock::duration::zero());
}

TEST_CASE("a replayed message keeps its content and records where it came from", "[client][replay]") {
  storage::Message m;
  m.topic = "orders";
  m.queue = 3;
  m.offset = 77;
  m.id[0] = 0xab;
  m.born_ms = 5;
  m.store_ms = 6;
  m.reconsume = 2;
  m.key = "k1";
  m.tag = "t1";
  m.body = std::string("bin\0ary", 7);
  m.props = {{"a", "1"}, {"%ORIGIN_TOPIC", "orders"}};
  std::string buf;
  auto rv = view_of(m, buf);

  auto r = client::replay_message(rv, 1764000000000, false);
  CHECK(r.body == m.body);
  CHECK(r.key == "k1");
  CHECK(r.tag == "t1");
  CHECK(r.id == storage::MessageId{});
  CHECK(r.reconsume == 0);
  REQUIRE(r.prop("a"));
  CHECK(*r.prop("a") == "1");
  CHECK_FALSE(r.prop("%ORIGIN_TOPIC"));  // the broker's properties are not a producer's to set
  CHECK(*r.prop(client::kPropReplayOriginTopic) == "orders");
  CHECK(*r.prop(client::kPropReplayOriginQueue) == "3");
  CHECK(*r.prop(client::kPropReplayOriginOffset) == "77");
  CHECK(*r.prop(client::kPropReplayOriginId) == storage::id_to_hex(m.id));
  CHECK(*r.prop(client::kPropReplayedAt) == "2025-11-24T16:00:00.000Z");
  CHECK_FALSE(r.prop(protocol::kPropRedriven));

  auto d = client::replay_message(rv, 0, true);
  CHECK_FALSE(d.prop("%ORIGIN_TOPIC"));  // the broker's own properties go
  REQUIRE(d.prop(protocol::kPropRedriven));
  CHECK(*d.prop("a") == "1");
  CHECK(d.reconsume == 0);
  CHECK(d.body == m.body);
}

TEST_CASE("the redrive bookkeeping group is a valid group name", "[client][replay]") {
  CHECK(client::redrive_group("workers") == "redrive.workers");
}

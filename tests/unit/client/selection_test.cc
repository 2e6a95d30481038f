#include <catch2/catch.hpp>

#include <map>
#include <set>
#include <string>

#include "client/queue_selector.h"
#include "client/receipts.h"

using namespace mq::client;

namespace {
bool all_up(size_t) { return true; }
}  // namespace

TEST_CASE("messages with the same key go to the same queue", "[client]") {
  QueueSelector sel({0, 1}, {4, 4});
  for (std::string key : {"a", "order-17", "user:42", ""}) {
    Route first = sel.select(std::string_view(key), all_up);
    for (int i = 0; i < 20; ++i) {
      Route r = sel.select(std::string_view(key), all_up);
      CHECK(r.broker == first.broker);
      CHECK(r.queue == first.queue);
    }
  }
  CHECK(key_hash("order-17") == key_hash("order-17"));
  CHECK(key_hash("abc") == 0x1a47e90bu);  // FNV-1a 32, stable across runs and hosts
}

TEST_CASE("keys spread over all queues of all masters", "[client]") {
  QueueSelector sel({0, 1}, {4, 4});
  std::set<std::pair<size_t, uint32_t>> seen;
  for (int i = 0; i < 1000; ++i) {
    Route r = sel.select(std::string_view("key-" + std::to_string(i)), all_up);
    seen.insert({r.broker, r.queue});
  }
  CHECK(seen.size() == 8);
}

TEST_CASE("keyless messages round-robin over every queue", "[client]") {
  QueueSelector sel({0, 1}, {3, 2});
  std::map<std::pair<size_t, uint32_t>, int> count;
  for (int i = 0; i < 50; ++i) {
    Route r = sel.select(std::nullopt, all_up);
    count[{r.broker, r.queue}]++;
  }
  REQUIRE(count.size() == 5);
  for (auto& [route, n] : count) CHECK(n == 10);
}

TEST_CASE("a pinned queue is used on the first usable master", "[client]") {
  QueueSelector sel({5, 7}, {4, 4}, 3);
  Route r = sel.select(std::string_view("k"), all_up);
  CHECK(r.broker == 5);
  CHECK(r.queue == 3);
  r = sel.select(std::nullopt, [](size_t b) { return b != 5; });
  CHECK(r.broker == 7);
  CHECK(r.queue == 3);
}

TEST_CASE("retries avoid the failed master and masters in fault avoidance", "[client]") {
  QueueSelector sel({0, 1}, {4, 4});
  for (int i = 0; i < 20; ++i) {
    CHECK(sel.select(std::nullopt, all_up, size_t{0}).broker == 1);
    CHECK(sel.select(std::nullopt, [](size_t b) { return b != 1; }).broker == 0);
    CHECK(sel.select(std::string_view("k" + std::to_string(i)), all_up, size_t{1}).broker == 0);
  }
  // Everything avoided: still picks something rather than nothing.
  Route r = sel.select(std::nullopt, [](size_t) { return false; });
  CHECK(r.broker <= 1);
  // A single master is used even when it just failed.
  QueueSelector one({3}, {2});
  CHECK(one.select(std::nullopt, all_up, size_t{3}).broker == 3);
}

TEST_CASE("a master's promoted slave takes over its queues, each key its queue", "[client]") {
  QueueSelector sel({0, 1}, {4, 2});
  std::map<std::string, Route> before;
  for (int i = 0; i < 200; ++i) {
    std::string k = "k" + std::to_string(i);
    before[k] = sel.select(std::string_view(k), all_up);
  }
  CHECK_FALSE(sel.substitute(5, 7));  // not a master of this selector
  REQUIRE(sel.substitute(0, 3));      // node 3, the slave of node 0, is a master now
  CHECK(sel.has(3));
  CHECK_FALSE(sel.has(0));
  CHECK(sel.queue_count(3) == 4);
  for (auto& [k, r] : before) {
    Route now = sel.select(std::string_view(k), all_up);
    CHECK(now.broker == (r.broker == 0 ? 3u : r.broker));
    CHECK(now.queue == r.queue);
  }
  std::set<size_t> used;
  for (int i = 0; i < 12; ++i) used.insert(sel.select(std::nullopt, all_up).broker);
  CHECK(used == std::set<size_t>{1, 3});
}

TEST_CASE("receipts come out in input order whatever order acks arrive in", "[client]") {
  InOrderBuffer<int> buf;
  for (int i = 0; i < 5; ++i) CHECK(buf.open() == static_cast<uint64_t>(i));
  std::vector<int> out;
  buf.complete(2, 20);
  buf.complete(1, 10);
  CHECK(buf.drain(out) == 0);
  CHECK(buf.size() == 5);
  buf.complete(0, 0);
  CHECK(buf.drain(out) == 3);
  CHECK(out == std::vector<int>{0, 10, 20});
  buf.complete(4, 40);
  CHECK(buf.drain(out) == 0);
  CHECK(buf.open() == 5);
  buf.complete(3, 30);
  buf.complete(5, 50);
  CHECK(buf.drain(out) == 3);
  CHECK(out == std::vector<int>{0, 10, 20, 30, 40, 50});
  CHECK(buf.empty());
  // Across growing and wrapping around: 1000 open at most, completed backwards in runs.
  out.clear();
  uint64_t next = 6;
  for (int round = 0; round < 20; ++round) {
    std::vector<uint64_t> opened;
    for (int i = 0; i < 50 * (round % 5 + 1); ++i) opened.push_back(buf.open());
    CHECK(opened.front() == next);
    for (auto it = opened.rbegin(); it != opened.rend(); ++it) buf.complete(*it, static_cast<int>(*it));
    CHECK(buf.drain(out) == opened.size());
    next = opened.back() + 1;
  }
  for (size_t i = 0; i < out.size(); ++i) CHECK(out[i] == static_cast<int>(6 + i));
  CHECK(buf.empty());
  // Growing while the open slots wrap around the ring's end, the oldest still open.
  InOrderBuffer<int> w;
  std::vector<int> got;
  for (int i = 0; i < 14; ++i) w.open();
  for (uint64_t s = 0; s < 12; ++s) w.complete(s, static_cast<int>(s));
  CHECK(w.drain(got) == 12);  // 2 left open, at the ring's end
  for (int i = 0; i < 40; ++i) CHECK(w.open() == static_cast<uint64_t>(14 + i));
  for (uint64_t s = 53; s >= 13; --s) w.complete(s, static_cast<int>(s));
  CHECK(w.drain(got) == 0);  // 12 holds them back
  w.complete(12, 12);
  CHECK(w.drain(got) == 42);
  for (size_t i = 0; i < got.size(); ++i) CHECK(got[i] == static_cast<int>(i));
  CHECK(got.size() == 54);
}

TEST_CASE("receipt lines are tab separated with dashes for unknowns", "[client]") {
  Receipt r;
  r.line = 7;
  r.broker = "127.0.0.1:9876";
  r.queue = 2;
  r.offset = 99;
  r.status = "SEND_OK";
  r.id[15] = 0x2a;
  std::string out;
  append_receipt_line(r, out);
  CHECK(out == "7\t0000000000000000000000000000002a\t127.0.0.1:9876\t2\t99\tSEND_OK\n");
  Receipt o;
  o.line = 1;
  o.id[0] = 0xff;
  o.broker = "h:1";
  o.status = "SENT";
  out.clear();
  append_receipt_line(o, out);
  CHECK(out == "1\tff000000000000000000000000000000\th:1\t-\t-\tSENT\n");
  // a line that was never sent (Producer::reject): no id either
  Receipt x;
  x.line = 3;
  x.status = "FAILED";
  out.clear();
  append_receipt_line(x, out);
  CHECK(out == "3\t-\t-\t-\t-\tFAILED\n");
}

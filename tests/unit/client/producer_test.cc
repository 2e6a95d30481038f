#include <catch2/catch.hpp>

#include <chrono>
#include <atomic>
#include <functional>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "client/cluster.h"
#include "client/producer.h"
#include "net/server.h"
#include "protocol/messages.h"
#include "util/bytes.h"

using namespace mq;
using PCode = protocol::Code;
using protocol::Frame;
using protocol::Type;

namespace {

// A broker stand-in: answers hello and topic_info, and hands each send
// request (decoded ids) to `on_send`, which answers through the Responder.
struct FakeBroker {
  using OnSend = std::function<void(std::vector<storage::MessageId> ids, std::vector<uint32_t> queues,
                                    net::Responder r)>;
  net::IoThread io;
  std::unique_ptr<net::Server> server;
  std::mutex mu;
  std::vector<storage::MessageId> seen;  // every id of every send attempt
  std::vector<std::string> bodies;       // and its body
  OnSend on_send;

  explicit FakeBroker(OnSend f) : on_send(std::move(f)) {
    auto s = net::Server::listen(io.io(), "127.0.0.1:0", {}, [this](Frame f, net::Responder r) { handle(std::move(f), r); });
    REQUIRE(s);
    server = std::move(*s);
  }
  ~FakeBroker() { server->close_all(); }
  std::string address() const { return server->local_address(); }

  void handle(Frame f, net::Responder r) {
    switch (f.header.type) {
      case Type::hello: {
        protocol::HelloResponse h;
        h.version = "fake";
        h.broker_addr = address();
        h.max_message_size = 4u << 20;
        h.default_queues = 4;
        std::string out;
        h.encode(out);
        r.reply(PCode::ok, std::move(out));
        return;
      }
      case Type::topic_info: r.fail(PCode::topic_not_found, "topic does not exist"); return;
      case Type::send: {
        ByteReader br(f.payload);
        uint32_t n = 0;
        REQUIRE(br.u32(n));
        std::string_view rest = f.payload;
        rest.remove_prefix(4);
        std::vector<storage::MessageId> ids;
        std::vector<uint32_t> queues;
        std::vector<std::string> got;
        for (uint32_t i = 0; i < n; ++i) {
          storage::RecordView rv;
          REQUIRE(storage::decode_record(rest, rv) == storage::DecodeResult::ok);
          ids.push_back(rv.id);
          queues.push_back(rv.queue);
          got.emplace_back(rv.body);
          rest.remove_prefix(rv.bytes.size());
        }
        REQUIRE(rest.empty());
        {
          std::lock_guard lock(mu);
          seen.insert(seen.end(), ids.begin(), ids.end());
          bodies.insert(bodies.end(), got.begin(), got.end());
        }
        on_send(std::move(ids), std::move(queues), r);
        return;
      }
      default: r.fail(PCode::unknown_type, "unknown request");
    }
  }
  size_t attempts() {
    std::lock_guard lock(mu);
    return seen.size();
  }
};

std::string placed(const std::vector<uint32_t>& queues, uint64_t first_offset) {
  protocol::SendResponse resp;
  for (size_t i = 0; i < queues.size(); ++i) resp.placed.emplace_back(queues[i], first_offset + i);
  std::string out;
  resp.encode(out);
  return out;
}

struct Run {
  std::unique_ptr<client::Cluster> cluster;
  std::unique_ptr<client::Producer> producer;
  std::vector<client::Receipt> receipts;
};

void start(Run& run, const std::string& addr, client::ProducerOptions opt) {
  auto c = client::Cluster::connect({addr}, "test", Millis(2000));
  REQUIRE(c);
  run.cluster = std::move(*c);
  auto p = client::Producer::create(*run.cluster, "t", opt);
  REQUIRE(p);
  run.producer = std::move(*p);
}

void send_bodies(Run& run, int n, bool flush_each = false) {
  for (int i = 1; i <= n; ++i) {
    storage::Message m;
    m.body = "m" + std::to_string(i);
    run.producer->submit(static_cast<uint64_t>(i), std::move(m), run.receipts);
    if (flush_each) run.producer->flush();
  }
  run.producer->finish(run.receipts);
}

}  // namespace

TEST_CASE("a BUSY answer is retried with the same message id", "[client]") {
  int calls = 0;
  FakeBroker broker([&](auto, std::vector<uint32_t> queues, net::Responder r) {
    if (calls++ == 0) return r.fail(PCode::busy, "try later");
    r.reply(PCode::ok, placed(queues, 100));
  });
  Run run;
  client::ProducerOptions opt;
  opt.mode = client::SendMode::sync;
  start(run, broker.address(), opt);
  send_bodies(run, 1);
  REQUIRE(run.receipts.size() == 1);
  CHECK(run.receipts[0].status == "SEND_OK");
  CHECK(run.receipts[0].ok);
  CHECK(run.receipts[0].offset == std::optional<uint64_t>(100));
  REQUIRE(broker.attempts() == 2);
  CHECK(broker.seen[0] == broker.seen[1]);
  CHECK(broker.seen[0] == run.receipts[0].id);
}

TEST_CASE("a record damaged on the way (CORRUPT_RECORD) is sent again, like BUSY", "[client]") {
  int calls = 0;
  FakeBroker broker([&](auto, std::vector<uint32_t> queues, net::Responder r) {
    if (calls++ == 0) return r.refuse(PCode::corrupt_record, "send request: record 0: record checksum mismatch");
    r.reply(PCode::ok, placed(queues, 7));
  });
  Run run;
  client::ProducerOptions opt;
  opt.mode = client::SendMode::sync;
  start(run, broker.address(), opt);
  send_bodies(run, 1);
  REQUIRE(run.receipts.size() == 1);
  CHECK(run.receipts[0].status == "SEND_OK");
  CHECK(run.receipts[0].offset == std::optional<uint64_t>(7));
  REQUIRE(broker.attempts() == 2);
  CHECK(broker.seen[0] == broker.seen[1]);
}

TEST_CASE("flush and replication timeouts are reported, not re-sent", "[client]") {
  FakeBroker broker([&](auto, std::vector<uint32_t> queues, net::Responder r) {
    r.reply(PCode::flush_slave_timeout, placed(queues, 0));
  });
  Run run;
  start(run, broker.address(), {});
  send_bodies(run, 3);
  REQUIRE(run.receipts.size() == 3);
  for (auto& rc : run.receipts) {
    CHECK(rc.status == "FLUSH_SLAVE_TIMEOUT");
    CHECK_FALSE(rc.ok);
    CHECK(rc.maybe_stored);
  }
  CHECK(broker.attempts() == 3);
  auto st = run.producer->stats();
  CHECK(st.failed == 3);
  CHECK(st.acked == 0);
}

TEST_CASE("a message fails with the cause once its retries are used up", "[client]") {
  FakeBroker broker([&](auto, auto, net::Responder r) { r.fail(PCode::busy, "broker is busy"); });
  Run run;
  client::ProducerOptions opt;
  opt.retries = 2;
  start(run, broker.address(), opt);
  send_bodies(run, 1);
  REQUIRE(run.receipts.size() == 1);
  CHECK(run.receipts[0].status == "FAILED");
  CHECK(run.receipts[0].error.find("broker is busy") != std::string::npos);
  CHECK(broker.attempts() == 3);
}

TEST_CASE("a rejected message is not retried", "[client]") {
  FakeBroker broker([&](auto, auto, net::Responder r) { r.fail(PCode::message_too_large, "body too large"); });
  Run run;
  start(run, broker.address(), {});
  send_bodies(run, 1);
  REQUIRE(run.receipts.size() == 1);
  CHECK(run.receipts[0].status == "FAILED");
  CHECK(broker.attempts() == 1);
}

TEST_CASE("async receipts come out in input order when acks arrive reversed", "[client]") {
  std::mutex mu;
  std::vector<std::pair<std::vector<uint32_t>, net::Responder>> held;
  FakeBroker broker([&](auto, std::vector<uint32_t> queues, net::Responder r) {
    std::lock_guard lock(mu);
    held.emplace_back(std::move(queues), r);
    if (held.size() == 5) {
      // Answer the last batch first.
      for (size_t i = held.size(); i-- > 0;) held[i].second.reply(PCode::ok, placed(held[i].first, i * 10));
    }
  });
  Run run;
  start(run, broker.address(), {});
  send_bodies(run, 5, /*flush_each=*/true);
  REQUIRE(run.receipts.size() == 5);
  for (size_t i = 0; i < 5; ++i) {
    CHECK(run.receipts[i].line == i + 1);
    CHECK(run.receipts[i].offset == std::optional<uint64_t>(i * 10));
  }
}

TEST_CASE("an unreachable broker is a clear one-line error", "[client]") {
  net::IoThread io;
  auto s = net::Server::listen(io.io(), "127.0.0.1:0", {}, [](Frame, net::Responder) {});
  REQUIRE(s);
  std::string addr = (*s)->local_address();
  s->reset();  // nothing listens there any more
  auto c = client::Cluster::connect({addr}, "test", Millis(2000));
  REQUIRE_FALSE(c);
  CHECK(c.status().code() == mq::Code::unavailable);
  CHECK(c.status().message() == "cannot reach " + addr + ": Connection refused");
}

TEST_CASE("a window smaller than a batch still sends everything", "[client]") {
  FakeBroker broker([&](auto, std::vector<uint32_t> queues, net::Responder r) { r.reply(PCode::ok, placed(queues, 0)); });
  Run run;
  client::ProducerOptions opt;
  opt.window = 3;
  opt.batch_msgs = 256;
  start(run, broker.address(), opt);
  send_bodies(run, 50);
  REQUIRE(run.receipts.size() == 50);
  for (size_t i = 0; i < 50; ++i) CHECK(run.receipts[i].line == i + 1);
  CHECK(run.producer->stats().acked == 50);
}

TEST_CASE("the pause before a retry on the same master grows and stays inside the budget", "[client]") {
  CHECK(client::retry_pause(1, 10000) == Millis(100));
  CHECK(client::retry_pause(2, 10000) == Millis(200));
  CHECK(client::retry_pause(3, 10000) == Millis(400));
  CHECK(client::retry_pause(4, 10000) == Millis(800));
  CHECK(client::retry_pause(5, 10000) == Millis(1000));
  CHECK(client::retry_pause(40, 10000) == Millis(1000));
  CHECK(client::retry_pause(3, 300) == Millis(150));  // half of what is left
  CHECK(client::retry_pause(1, 0) == Millis(0));
}

TEST_CASE("retries on the only master are spread out by a growing pause", "[client]") {
  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::vector<Clock::time_point> at;
  FakeBroker broker([&](auto, std::vector<uint32_t> queues, net::Responder r) {
    size_t n;
    {
      std::lock_guard lock(mu);
      at.push_back(Clock::now());
      n = at.size();
    }
    if (n <= 3) return r.fail(PCode::busy, "restarting");
    r.reply(PCode::ok, placed(queues, 7));
  });
  Run run;
  client::ProducerOptions opt;
  opt.mode = client::SendMode::sync;
  opt.retries = 5;
  opt.timeout = Millis(10000);
  start(run, broker.address(), opt);
  send_bodies(run, 1);
  REQUIRE(run.receipts.size() == 1);
  CHECK(run.receipts[0].ok);
  std::lock_guard lock(mu);
  REQUIRE(at.size() == 4);
  auto gap = [&](size_t i) { return std::chrono::duration_cast<Millis>(at[i] - at[i - 1]).count(); };
  CHECK(gap(1) >= 90);
  CHECK(gap(2) >= 190);
  CHECK(gap(3) >= 390);
  CHECK(gap(3) < 3000);
}

TEST_CASE("batches cut at batch_bytes and regrouped for a retry carry every record intact", "[client]") {
  // Records of 100-130 bytes into batches of at most 1000 bytes: most batches end with a
  // record that did not fit and starts the next one. A third of them are BUSY, and
  // its messages are regrouped over the two other masters (their queues stamped anew),
  // so a retried batch holds some of a batch's records at other places.
  std::mutex mu;
  std::map<storage::MessageId, int> tried;  // attempts of each id so far
  int calls = 0, refused = 0;
  auto answer = [&](std::vector<storage::MessageId> ids, std::vector<uint32_t> queues, net::Responder r) {
    bool refuse;
    {
      std::lock_guard lock(mu);
      // Every third attempt, unless one of its messages was refused twice
      // already: each is sent at most 3 times (within retries = 3).
      int most = 0;
      for (auto& id : ids) most = std::max(most, tried[id]++);
      refuse = most < 2 && ++calls % 3 == 1;
      refused += refuse;
    }
    if (refuse) return r.fail(PCode::busy, "busy");
    r.reply(PCode::ok, placed(queues, 0));
  };
  FakeBroker a(answer), b(answer), d(answer);
  auto c = client::Cluster::connect({a.address(), b.address(), d.address()}, "test", Millis(2000));
  REQUIRE(c);
  client::ProducerOptions opt;
  opt.batch_bytes = 1000;
  opt.retries = 3;
  opt.window = 64;
  opt.timeout = Millis(10000);
  auto p = client::Producer::create(**c, "t", opt);
  REQUIRE(p);
  auto body_of = [](int i) {
    return std::string(static_cast<size_t>(30 + i % 31), static_cast<char>('a' + i % 26)) + std::to_string(i);
  };
  const int n = 300;
  std::vector<client::Receipt> receipts;
  for (int i = 1; i <= n; ++i) {
    storage::Message m;
    m.body = body_of(i);
    (*p)->submit(static_cast<uint64_t>(i), std::move(m), receipts);
  }
  (*p)->finish(receipts);
  REQUIRE(receipts.size() == n);
  for (int i = 0; i < n; ++i) {
    CHECK(receipts[static_cast<size_t>(i)].line == static_cast<uint64_t>(i + 1));
    CHECK(receipts[static_cast<size_t>(i)].ok);
  }
  {
    std::lock_guard lock(mu);
    CHECK(calls > 40);  // many batches
    CHECK(refused > 10);  // about a third of them refused once
  }
  // Every body arrived whole (the fake brokers decode each record and check its
  // checksum), in one to three attempts.
  std::map<std::string, int> times;
  for (FakeBroker* fb : {&a, &b, &d}) {
    std::lock_guard lock(fb->mu);
    for (auto& body : fb->bodies) ++times[body];
  }
  REQUIRE(times.size() == n);
  for (int i = 1; i <= n; ++i) {
    INFO(body_of(i));
    REQUIRE(times.count(body_of(i)) == 1);
    CHECK(times[body_of(i)] <= 3);
  }
}

TEST_CASE("a retry goes to another master at once", "[client]") {
  // a and b both fail twice, then b takes it: every retry changes master, so none pauses
  // (pausing would take 100 + 200 + 400 ms).
  using Clock = std::chrono::steady_clock;
  std::mutex mu;
  std::vector<std::pair<char, Clock::time_point>> at;
  auto fake = [&](char name) {
    return [&, name](auto, std::vector<uint32_t> queues, net::Responder r) {
      size_t n;
      {
        std::lock_guard lock(mu);
        at.emplace_back(name, Clock::now());
        n = at.size();
      }
      if (n < 4) return r.fail(PCode::busy, "busy");
      r.reply(PCode::ok, placed(queues, 3));
    };
  };
  FakeBroker a(fake('a'));
  FakeBroker b(fake('b'));
  // Masters are taken in the order of their advertised addresses, not of the list.
  bool a_first = a.address() < b.address();
  char first = a_first ? 'a' : 'b', second = a_first ? 'b' : 'a';
  auto c = client::Cluster::connect({b.address(), a.address()}, "test", Millis(2000));
  REQUIRE(c);
  client::ProducerOptions opt;
  opt.mode = client::SendMode::sync;
  opt.queue = 0;  // pinned: the first usable master
  opt.retries = 5;
  opt.timeout = Millis(10000);
  auto p = client::Producer::create(**c, "t", opt);
  REQUIRE(p);
  std::vector<client::Receipt> receipts;
  storage::Message m;
  m.body = "x";
  (*p)->submit(1, std::move(m), receipts);
  (*p)->finish(receipts);
  REQUIRE(receipts.size() == 1);
  CHECK(receipts[0].ok);
  CHECK(receipts[0].broker == (a_first ? b.address() : a.address()));
  std::lock_guard lock(mu);
  REQUIRE(at.size() == 4);
  CHECK(at[0].first == first);
  CHECK(at[1].first == second);
  CHECK(at[2].first == first);
  CHECK(at[3].first == second);
  CHECK(std::chrono::duration_cast<Millis>(at[3].second - at[0].second).count() < 300);
}

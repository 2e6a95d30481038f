// GroupConsumer against a broker stand-in: answers that do not fit the pull asked for.
#include <catch2/catch.hpp>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "client/cluster.h"
#include "client/group_consumer.h"
#include "net/server.h"
#include "protocol/group_messages.h"
#include "protocol/messages.h"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>
#include <sstream>

using namespace mq;
using PCode = protocol::Code;
using protocol::Frame;
using protocol::Type;

namespace {

template <class M>
std::string encoded(const M& m) {
  std::string out;
  m.encode(out);
  return out;
}

// One master with one queue "t":0 holding kCount records. The first pull is answered as if
// its offset had been damaged on the way (from kSkip on, next_offset past them); the others
// honestly. Commits are recorded.
struct FakeGroupBroker {
  static constexpr uint64_t kCount = 10, kSkip = 5;
  net::IoThread io;
  std::unique_ptr<net::Server> server;
  std::mutex mu;
  std::vector<std::string> log;  // records by offset
  int pulls = 0;
  int64_t committed = -1;
  uint64_t deleted = 0;     // retention: offsets below this are gone (min_offset)
  bool damage_first = true;  // the first pull is answered for another offset

  FakeGroupBroker() {
    for (uint64_t i = 0; i < kCount; ++i) {
      storage::Message m;
      m.topic = "t";
      m.offset = i;
      m.body = "m" + std::to_string(i);
      std::string rec;
      storage::encode_record(m, rec);
      log.push_back(std::move(rec));
    }
    auto s = net::Server::listen(io.io(), "127.0.0.1:0", {}, [this](Frame f, net::Responder r) { handle(f, r); });
    REQUIRE(s);
    server = std::move(*s);
  }
  ~FakeGroupBroker() { server->close_all(); }

  void handle(const Frame& f, const net::Responder& r) {
    std::lock_guard lock(mu);
    switch (f.header.type) {
      case Type::hello: {
        protocol::HelloResponse h;
        h.version = "fake";
        h.broker_addr = server->local_address();
        h.default_queues = 1;
        return r.reply(PCode::ok, encoded(h));
      }
      case Type::heartbeat: {
        protocol::HeartbeatResponse h;
        h.members = 1;
        h.assigned.push_back({"t", 0});
        return r.reply(PCode::ok, encoded(h));
      }
      case Type::query_offsets: {
        protocol::QueryOffsetsResponse q;
        q.entries.push_back({{"t", 0}, committed < 0 ? 0 : committed, 0});
        return r.reply(PCode::ok, encoded(q));
      }
      case Type::commit_offsets: {
        protocol::CommitRequest req;
        if (!req.decode(f.payload)) return r.fail(PCode::bad_request, "bad commit");
        protocol::CommitResponse resp;
        for (auto& e : req.entries) {
          committed = e.offset;
          resp.results.push_back({true, e.offset, 0});
        }
        return r.reply(PCode::ok, encoded(resp));
      }
      case Type::pull: {
        protocol::PullRequest req;
        if (!req.decode(f.payload)) return r.fail(PCode::bad_request, "bad pull");
        uint64_t from = ++pulls == 1 && damage_first ? std::max<uint64_t>(req.offset, kSkip) : req.offset;
        from = std::max(from, deleted);
        protocol::PullResponse resp;
        resp.min_offset = deleted;
        resp.max_offset = kCount;
        for (uint64_t o = from; o < kCount && resp.count < req.max_msgs; ++o, ++resp.count)
          resp.records += log[o];
        resp.next_offset = std::max<uint64_t>(from, std::min<uint64_t>(kCount, from + resp.count));
        return r.reply(PCode::ok, encoded(resp));
      }
      default: return r.fail(PCode::unknown_type, "not in this fake");
    }
  }
};

// Runs a group member ("g" on "t", -e) against the fake and returns the offsets it was
// handed, in order.
std::vector<uint64_t> consume_all(FakeGroupBroker& broker) {
  auto c = client::Cluster::connect({broker.server->local_address()}, "test", Millis(2000));
  REQUIRE(c);
  client::GroupOptions opt;
  opt.group = "g";
  opt.topic = "t";
  opt.to_end = true;
  opt.commit_interval = Millis(100);
  opt.wait_ms = 0;
  client::GroupConsumer consumer(**c, opt);
  std::vector<uint64_t> seen;
  uint64_t out = 0;
  std::atomic<bool> stop{false};
  auto st = consumer.run(
      [&](const storage::RecordView& v, std::string_view) -> std::optional<uint64_t> {
        seen.push_back(v.offset);
        return ++out;
      },
      [&] { return out; }, [] { return true; }, stop);
  REQUIRE(st.is_ok());
  return seen;
}

}  // namespace


TEST_CASE("a pull answer for another offset than asked is pulled again, not skipped over", "[client]") {
  FakeGroupBroker broker;
  auto seen = consume_all(broker);
  std::vector<uint64_t> want;
  for (uint64_t i = 0; i < FakeGroupBroker::kCount; ++i) want.push_back(i);
  CHECK(seen == want);
  std::lock_guard lock(broker.mu);
  CHECK(broker.pulls >= 2);
  CHECK(broker.committed == static_cast<int64_t>(FakeGroupBroker::kCount));
}

TEST_CASE("offsets deleted by retention before the group read them are skipped with a warning", "[client]") {
  FakeGroupBroker broker;
  broker.damage_first = false;
  broker.deleted = 7;  // the group has no offset: it asks for 0
  std::ostringstream logged;
  auto before = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>("t", std::make_shared<spdlog::sinks::ostream_sink_mt>(logged)));
  auto seen = consume_all(broker);
  spdlog::set_default_logger(before);
  CHECK(seen == std::vector<uint64_t>{7, 8, 9});
  CHECK(logged.str().find("offsets 0 to 6 were deleted (--retention) before group g consumed them: 7 messages skipped") !=
        std::string::npos);
}

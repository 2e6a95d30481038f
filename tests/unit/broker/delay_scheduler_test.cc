#include <catch2/catch.hpp>

#include <atomic>
#include <future>

#include "broker/delay_scheduler.h"
#include "broker/topics.h"
#include "protocol/group_messages.h"
#include "storage/store_test_util.h"

using namespace mq;
using namespace mq::storage::test;
using mq::broker::DelayScheduler;
using mq::broker::OffsetTable;
using mq::broker::TopicRegistry;

namespace {

std::unique_ptr<storage::MessageStore> open_at(const std::filesystem::path& dir) {
  storage::StoreOptions o;
  o.dir = dir;
  o.flush = storage::FlushMode::sync;
  return open_store(o);
}

// Sends one failed message of group g back through `d` and waits for it to be stored.
void send_back(DelayScheduler& d, int64_t now) {
  protocol::SendBackRequest req;
  req.group = "g";
  req.record = make_record("t", 0, "failed");
  std::promise<Status> stored;
  d.send_back(req, now, [&](Status s) { stored.set_value(s); });
  REQUIRE(stored.get_future().get().to_string() == "ok");
}

int64_t progress(OffsetTable& t) {
  return t.get(broker::kScheduleGroup, {std::string(protocol::kScheduleTopic), 0}).offset;
}

}  // namespace

TEST_CASE("the delay scheduler registers the retry topic it moves a message to before storing it",
          "[broker][delay]") {
  TempDir data, meta;
  auto store = open_at(data.path());
  auto offsets = std::move(*OffsetTable::open(meta.path() / "offsets.json"));
  std::vector<Millis> levels{Millis(1000)};
  // The broker that took the message back (a master, since killed) registered
  // %RETRY%g; this one (its promoted slave) knows only the topics of the records
  // it copied: %SCHEDULE%.
  {
    DelayScheduler old_master(*store, *offsets, levels,
                              [](const std::string&, uint32_t) { return Status::ok(); });
    send_back(old_master, 0);
  }
  auto topics = std::move(*TopicRegistry::open(meta.path()));
  std::atomic<bool> refuse{true};
  std::vector<std::string> asked;
  DelayScheduler promoted(*store, *offsets, levels, [&](const std::string& t, uint32_t n) -> Status {
    asked.push_back(t);
    if (refuse && t != protocol::kScheduleTopic) return Status::io_error("topics.json: disk full");
    return topics->ensure(t, n).status();
  });
  CHECK_FALSE(topics->queues("%RETRY%g"));

  promoted.tick(500);  // not due yet: nothing moved, nothing registered
  CHECK(progress(*offsets) == -1);
  CHECK_FALSE(topics->queues("%RETRY%g"));

  // Due, but the topic cannot be registered: nothing is moved, the progress stays.
  promoted.tick(1000);
  CHECK(asked.back() == "%RETRY%g");
  CHECK(progress(*offsets) == -1);
  CHECK(store->queue_info("%RETRY%g", 0).max_offset == 0);

  refuse = false;
  promoted.tick(1000);
  REQUIRE(eventually([&] { return progress(*offsets) == 1; }));
  CHECK(topics->queues("%RETRY%g") == 1u);
  CHECK(store->queue_info("%RETRY%g", 0).max_offset == 1);
  // Durable: a restarted broker knows the topic with its one queue.
  auto reopened = std::move(*TopicRegistry::open(meta.path()));
  CHECK(reopened->queues("%RETRY%g") == 1u);
  REQUIRE(store->close().is_ok());
}

TEST_CASE("a dead letter is refused while its topic cannot be registered", "[broker][delay]") {
  TempDir data, meta;
  auto store = open_at(data.path());
  auto offsets = std::move(*OffsetTable::open(meta.path() / "offsets.json"));
  auto topics = std::move(*TopicRegistry::open(meta.path()));
  std::atomic<bool> refuse{true};
  DelayScheduler d(*store, *offsets, {Millis(1000)}, [&](const std::string& t, uint32_t n) -> Status {
    if (refuse && t != protocol::kScheduleTopic) return Status::io_error("topics.json: disk full");
    return topics->ensure(t, n).status();
  });
  protocol::SendBackRequest req;
  req.group = "g";
  req.record = make_record("t", 0, "poison");
  req.dead_letter_now = true;
  std::promise<Status> refused;
  d.send_back(req, 0, [&](Status s) { refused.set_value(s); });
  auto st = refused.get_future().get();
  CHECK(st.code() == Code::io_error);
  CHECK(st.message().find("dead-letter topic") != std::string::npos);
  CHECK(store->queue_info("%DLQ%g", 0).max_offset == 0);  // nothing stored unseen
  refuse = false;
  std::promise<Status> stored;
  d.send_back(req, 0, [&](Status s) { stored.set_value(s); });
  CHECK(stored.get_future().get().to_string() == "ok");
  CHECK(topics->queues("%DLQ%g") == 1u);
  CHECK(store->queue_info("%DLQ%g", 0).max_offset == 1);
  REQUIRE(store->close().is_ok());
}

TEST_CASE("a message sent back keeps where it came from only when the broker wrote that", "[broker][delay]") {
  TempDir data, meta;
  auto store = open_at(data.path());
  auto offsets = std::move(*OffsetTable::open(meta.path() / "offsets.json"));
  DelayScheduler d(*store, *offsets, {Millis(1000)}, [](const std::string&, uint32_t) { return Status::ok(); });
  auto dead_letter = [&](const std::string& topic, const std::string& claimed_origin) {
    storage::Message m;
    m.topic = topic;
    m.queue = 0;
    m.offset = 3;
    m.body = "x";
    m.set_prop(protocol::kPropOriginTopic, claimed_origin);
    m.set_prop(protocol::kPropOriginQueue, "7");
    protocol::SendBackRequest req;
    req.group = "g";
    req.dead_letter_now = true;
    storage::encode_record(m, req.record);
    std::promise<Status> stored;
    d.send_back(req, 0, [&](Status s) { stored.set_value(s); });
    REQUIRE(stored.get_future().get().to_string() == "ok");
  };
  // From an ordinary topic: the origin is that topic, whatever a property claims (a record
  // stored before producers were kept from setting % properties, or by a forger).
  dead_letter("public", "audit");
  // From the group's retry topic: the origin the broker recorded when it first came back.
  dead_letter("%RETRY%g", "orders");
  auto r = store->read("%DLQ%g", 0, 0, 10, 1 << 20);
  REQUIRE(r);
  auto dl = messages(*r);
  REQUIRE(dl.size() == 2);
  CHECK(*dl[0].prop(protocol::kPropOriginTopic) == "public");
  CHECK(*dl[0].prop(protocol::kPropOriginQueue) == "0");
  CHECK(*dl[0].prop(protocol::kPropOriginOffset) == "3");
  CHECK(*dl[1].prop(protocol::kPropOriginTopic) == "orders");
  CHECK(*dl[1].prop(protocol::kPropOriginQueue) == "7");
  REQUIRE(store->close().is_ok());
}

TEST_CASE("a retry waiting on a level that a shorter --delay-levels dropped is still delivered when due",
          "[broker][delay]") {
  TempDir data, meta;
  auto store = open_at(data.path());
  auto offsets = std::move(*OffsetTable::open(meta.path() / "offsets.json"));
  auto ok = [](const std::string&, uint32_t) { return Status::ok(); };
  {
    // Its third failure: level 3 of "1s 1s 5s", %SCHEDULE% queue 2, due at 5000.
    DelayScheduler three(*store, *offsets, {Millis(1000), Millis(1000), Millis(5000)}, ok);
    storage::Message m;
    m.topic = "t";
    m.body = "failed thrice";
    m.reconsume = 2;
    m.id[0] = 7;
    protocol::SendBackRequest req;
    req.group = "g";
    storage::encode_record(m, req.record);
    std::promise<Status> stored;
    three.send_back(req, 0, [&](Status s) { stored.set_value(s); });
    REQUIRE(stored.get_future().get().to_string() == "ok");
  }
  REQUIRE(store->queue_info(protocol::kScheduleTopic, 2).max_offset == 1);
  // Restarted with "1s 1s": the third queue is drained all the same, at its due time.
  DelayScheduler two(*store, *offsets, {Millis(1000), Millis(1000)}, ok);
  two.tick(4999);
  CHECK(store->queue_info("%RETRY%g", 0).max_offset == 0);
  two.tick(5000);
  REQUIRE(eventually([&] { return store->queue_info("%RETRY%g", 0).max_offset == 1; }));
  REQUIRE(eventually([&] {
    return offsets->get(broker::kScheduleGroup, {std::string(protocol::kScheduleTopic), 2}).offset == 1;
  }));
  auto r = store->read("%RETRY%g", 0, 0, 10, 1 << 20);
  REQUIRE(r);
  auto v = storage::parse_record(r->records);
  REQUIRE(v);
  CHECK(v->body == "failed thrice");
  CHECK(v->reconsume == 3);
  REQUIRE(store->close().is_ok());
}

#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>
#include <thread>

#include "broker/broker.h"
#include "broker/topics.h"
#include "net/channel.h"
#include "net/server.h"
#include "protocol/message_id.h"
#include "protocol/group_messages.h"
#include "protocol/messages.h"
#include "storage/message_store.h"
#include "storage/record.h"
#include "storage/store_test_util.h"
#include "util/bytes.h"
#include "util/file.h"

using mq::protocol::Code;
using mq::protocol::Frame;
using mq::protocol::Type;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

class BrokerTempDir {
 public:
  BrokerTempDir() {
    std::string tmpl = (fs::temp_directory_path() / "mq-broker-test-XXXXXX").string();
    path_ = ::mkdtemp(tmpl.data());
  }
  ~BrokerTempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

mq::storage::Message make_message(std::string topic, uint32_t queue, std::string body,
                                  std::string tag = "") {
  mq::storage::Message m;
  m.topic = std::move(topic);
  m.queue = queue;
  m.id = mq::protocol::new_message_id();
  m.born_ms = mq::now_ms();
  m.tag = std::move(tag);
  m.body = std::move(body);
  return m;
}

std::string send_payload(const std::vector<mq::storage::Message>& msgs) {
  std::string out;
  mq::ByteWriter(out).u32(static_cast<uint32_t>(msgs.size()));
  for (auto& m : msgs) mq::storage::encode_record(m, out);
  return out;
}

std::string pull_payload(const std::string& topic, uint32_t queue, uint64_t offset,
                         uint32_t wait_ms = 0) {
  mq::protocol::PullRequest p;
  p.topic = topic;
  p.queue = queue;
  p.offset = offset;
  p.wait_ms = wait_ms;
  std::string out;
  p.encode(out);
  return out;
}

std::vector<std::string> bodies(const std::string& records) {
  std::vector<std::string> out;
  std::string_view rest = records;
  while (!rest.empty()) {
    mq::storage::RecordView v;
    if (mq::storage::decode_record(rest, v) != mq::storage::DecodeResult::ok) {
      out.push_back("<bad record>");
      break;
    }
    out.emplace_back(v.body);
    rest.remove_prefix(v.bytes.size());
  }
  return out;
}

std::string error_text(const Frame& f) {
  return mq::protocol::status_from_response(f.header.status, f.payload).message();
}

struct BrokerFixture {
  explicit BrokerFixture(mq::broker::BrokerConfig cfg = {}) {
    mq::storage::StoreOptions so;
    so.dir = dir.path();
    so.flush = mq::storage::FlushMode::sync;
    auto s = mq::storage::MessageStore::open(so);
    REQUIRE(s);
    store = std::move(*s);
    auto t = mq::broker::TopicRegistry::open(dir.path());
    REQUIRE(t);
    topics = std::move(*t);
    broker = std::make_unique<mq::broker::Broker>(io.io(), *store, *topics, cfg);
    auto srv = mq::net::Server::listen(
        io.io(), "127.0.0.1:0", {},
        [this](Frame f, mq::net::Responder r) { broker->handle(std::move(f), std::move(r)); },
        [this](uint64_t id) { broker->connection_closed(id); });
    REQUIRE(srv);
    server = std::move(*srv);
    broker->set_advertised_address(server->local_address());
    channel = mq::net::Channel::create(io.io(), server->local_address());
  }
  ~BrokerFixture() {
    server->stop_accepting();
    broker->shutdown(2000ms);
    (void)store->close();
    channel.reset();
    server->close_all();
  }

  Frame call(Type type, std::string payload, std::chrono::milliseconds timeout = 5000ms) {
    auto r = channel->call(type, std::move(payload), timeout);
    REQUIRE(r);
    return std::move(*r);
  }

  mq::protocol::SendResponse send_ok(const std::vector<mq::storage::Message>& msgs) {
    auto f = call(Type::send, send_payload(msgs));
    INFO(error_text(f));
    REQUIRE(f.header.status == Code::ok);
    mq::protocol::SendResponse resp;
    REQUIRE(resp.decode(f.payload));
    return resp;
  }

  mq::protocol::PullResponse pull_ok(const std::string& topic, uint32_t queue, uint64_t offset,
                                     uint32_t wait_ms = 0) {
    return pull_response(call(Type::pull, pull_payload(topic, queue, offset, wait_ms), 10000ms));
  }

  static mq::protocol::PullResponse pull_response(const Frame& f) {
    INFO(error_text(f));
    REQUIRE(f.header.status == Code::ok);
    mq::protocol::PullResponse resp;
    REQUIRE(resp.decode(f.payload));
    return resp;
  }

  // A pull on another thread, and how long it took. No Catch macros there
  // (Catch is not thread-safe: a sanitizer build caught INFO racing with the
  // main thread's); check the answer with pull_response() on the main thread.
  using TimedPull = std::pair<mq::Result<Frame>, std::chrono::steady_clock::duration>;
  std::future<TimedPull> pull_async(const std::string& topic, uint32_t queue, uint64_t offset,
                                    uint32_t wait_ms) {
    return std::async(std::launch::async, [this, topic, queue, offset, wait_ms] {
      auto t0 = std::chrono::steady_clock::now();
      auto r = channel->call(Type::pull, pull_payload(topic, queue, offset, wait_ms),
                             std::chrono::milliseconds(wait_ms) + 10000ms);
      return TimedPull(std::move(r), std::chrono::steady_clock::now() - t0);
    });
  }

  BrokerTempDir dir;
  std::unique_ptr<mq::storage::MessageStore> store;
  std::unique_ptr<mq::broker::TopicRegistry> topics;
  mq::net::IoThread io;
  std::unique_ptr<mq::broker::Broker> broker;
  std::unique_ptr<mq::net::Server> server;
  std::shared_ptr<mq::net::Channel> channel;
};

}  // namespace

TEST_CASE("broker stores a sent batch and serves it to a pull", "[broker]") {
  BrokerFixture fx;
  auto resp = fx.send_ok({make_message("orders", 1, "a"), make_message("orders", 1, "b"),
                          make_message("orders", 2, "c"), make_message("orders", 1, "d")});
  REQUIRE(resp.placed.size() == 4);
  CHECK(resp.placed[0] == std::pair<uint32_t, uint64_t>{1, 0});
  CHECK(resp.placed[1] == std::pair<uint32_t, uint64_t>{1, 1});
  CHECK(resp.placed[2] == std::pair<uint32_t, uint64_t>{2, 0});
  CHECK(resp.placed[3] == std::pair<uint32_t, uint64_t>{1, 2});

  auto p = fx.pull_ok("orders", 1, 0);
  CHECK(p.count == 3);
  CHECK(p.next_offset == 3);
  CHECK(p.max_offset == 3);
  CHECK(bodies(p.records) == std::vector<std::string>{"a", "b", "d"});
  auto tail = fx.pull_ok("orders", 1, 2);
  CHECK(bodies(tail.records) == std::vector<std::string>{"d"});
  auto empty = fx.pull_ok("orders", 0, 0);
  CHECK(empty.count == 0);

  // The auto-created topic is durable in topics.json.
  auto again = mq::broker::TopicRegistry::open(fx.dir.path());
  REQUIRE(again);
  CHECK((*again)->queues("orders") == 4u);
}

TEST_CASE("a long-polling pull wakes within milliseconds of a send", "[broker]") {
  BrokerFixture fx;
  fx.send_ok({make_message("lp", 0, "first")});
  auto pull = fx.pull_async("lp", 0, 1, 10000);
  std::this_thread::sleep_for(200ms);
  REQUIRE(fx.broker->parked_pulls() == 1);
  auto sent_at = std::chrono::steady_clock::now();
  fx.send_ok({make_message("lp", 0, "second")});
  REQUIRE(pull.wait_for(5s) == std::future_status::ready);
  auto [r, took] = pull.get();
  REQUIRE(r);
  auto p = BrokerFixture::pull_response(*r);
  CHECK(bodies(p.records) == std::vector<std::string>{"second"});
  CHECK(p.next_offset == 2);
  CHECK(took >= 190ms);
  CHECK(std::chrono::steady_clock::now() - sent_at < 500ms);
  CHECK(fx.broker->parked_pulls() == 0);
}

TEST_CASE("a long-polling pull with nothing new answers empty when its wait ends", "[broker]") {
  BrokerFixture fx;
  fx.send_ok({make_message("lp", 0, "x")});
  auto t0 = std::chrono::steady_clock::now();
  auto p = fx.pull_ok("lp", 0, 1, 250);
  auto took = std::chrono::steady_clock::now() - t0;
  CHECK(p.count == 0);
  CHECK(p.next_offset == 1);
  CHECK(took >= 240ms);
  CHECK(took < 3s);
}

TEST_CASE("shutdown answers parked pulls at once", "[broker]") {
  BrokerFixture fx;
  fx.send_ok({make_message("lp", 0, "x")});
  auto pull = fx.pull_async("lp", 0, 1, 60000);
  std::this_thread::sleep_for(100ms);
  REQUIRE(fx.broker->parked_pulls() == 1);
  CHECK(fx.broker->shutdown(1000ms));
  REQUIRE(pull.wait_for(2s) == std::future_status::ready);
  auto r = pull.get().first;
  REQUIRE(r);
  CHECK(BrokerFixture::pull_response(*r).count == 0);
  // After shutdown, sends are refused so clients go elsewhere.
  auto f = fx.call(Type::send, send_payload({make_message("lp", 0, "late")}));
  CHECK(f.header.status == Code::busy);
}

TEST_CASE("topic info lists queues and offsets of one or every topic", "[broker]") {
  BrokerFixture fx;
  fx.send_ok({make_message("a", 0, "1"), make_message("a", 0, "2"), make_message("b", 3, "3")});
  auto f = fx.call(Type::topic_info, "");
  REQUIRE(f.header.status == Code::ok);
  mq::protocol::TopicInfoResponse all;
  REQUIRE(all.decode(f.payload));
  REQUIRE(all.topics.size() == 2);
  CHECK(all.topics[0].topic == "a");
  REQUIRE(all.topics[0].queues.size() == 4);
  CHECK(all.topics[0].queues[0].max_offset == 2);
  CHECK(all.topics[0].queues[0].newest_store_ms > 0);
  CHECK(all.topics[0].queues[1].max_offset == 0);
  CHECK(all.topics[1].queues[3].max_offset == 1);

  std::string one;
  mq::ByteWriter(one).str16("b");
  auto g = fx.call(Type::topic_info, one);
  mq::protocol::TopicInfoResponse just_b;
  REQUIRE(just_b.decode(g.payload));
  REQUIRE(just_b.topics.size() == 1);
  CHECK(just_b.topics[0].topic == "b");

  std::string missing;
  mq::ByteWriter(missing).str16("nope");
  auto h = fx.call(Type::topic_info, missing);
  CHECK(h.header.status == Code::topic_not_found);
  CHECK(error_text(h).find("nope") != std::string::npos);
}

TEST_CASE("offset for time finds the first message stored at or after a time", "[broker]") {
  BrokerFixture fx;
  fx.send_ok({make_message("t", 0, "old")});
  std::this_thread::sleep_for(20ms);
  int64_t mid = mq::now_ms();
  std::this_thread::sleep_for(20ms);
  fx.send_ok({make_message("t", 0, "new")});
  auto ask = [&](int64_t ms) {
    mq::protocol::OffsetForTimeRequest req{"t", 0, ms};
    std::string payload;
    req.encode(payload);
    auto f = fx.call(Type::offset_for_time, payload);
    REQUIRE(f.header.status == Code::ok);
    mq::ByteReader r(f.payload);
    uint64_t off = 99;
    REQUIRE(r.u64(off));
    return off;
  };
  CHECK(ask(0) == 0);
  CHECK(ask(mid) == 1);
  CHECK(ask(mq::now_ms() + 60000) == 2);
}

TEST_CASE("sends to unknown topics fail when auto-create is off", "[broker]") {
  mq::broker::BrokerConfig cfg;
  cfg.auto_create = false;
  BrokerFixture fx(cfg);
  auto f = fx.call(Type::send, send_payload({make_message("ghost", 0, "boo")}));
  CHECK(f.header.status == Code::topic_not_found);
  CHECK(error_text(f).find("ghost") != std::string::npos);
  CHECK(error_text(f).find("--no-auto-create") != std::string::npos);
  CHECK_FALSE(fx.topics->queues("ghost"));
  REQUIRE(fx.topics->ensure("ghost", 2));
  auto ok = fx.send_ok({make_message("ghost", 1, "boo")});
  CHECK(ok.placed[0].first == 1);
}

TEST_CASE("a message above the size limit is refused and nothing of its batch is stored", "[broker]") {
  mq::broker::BrokerConfig cfg;
  cfg.max_message_size = 1000;
  BrokerFixture fx(cfg);
  auto f = fx.call(Type::send, send_payload({make_message("big", 0, "small"),
                                             make_message("big", 0, std::string(1001, 'x'))}));
  CHECK(f.header.status == Code::message_too_large);
  CHECK(error_text(f).find("1001") != std::string::npos);
  fx.send_ok({make_message("big", 0, std::string(1000, 'y'))});
  auto p = fx.pull_ok("big", 0, 0);
  CHECK(p.count == 1);
}

TEST_CASE("invalid values get clear errors and the connection stays", "[broker]") {
  BrokerFixture fx;
  fx.send_ok({make_message("t", 0, "first")});
  REQUIRE(fx.server->connections() == 1);
  auto q = fx.call(Type::send, send_payload({make_message("t", 9, "x")}));
  CHECK(q.header.status == Code::bad_request);
  CHECK(error_text(q).find("queue 9") != std::string::npos);

  auto reserved = fx.call(Type::send, send_payload({make_message("%DLQ%g", 0, "x")}));
  CHECK(reserved.header.status == Code::bad_request);

  auto no_topic = fx.call(Type::pull, pull_payload("missing", 0, 0));
  CHECK(no_topic.header.status == Code::topic_not_found);

  // A request of the protocol this broker does not serve (no replication here).
  auto unserved = fx.call(Type::replication_status, "");
  CHECK(unserved.header.status == Code::unknown_type);
  CHECK(error_text(unserved).find("not served") != std::string::npos);

  // None of it harmed the connection.
  fx.send_ok({make_message("t", 0, "fine")});
  CHECK(fx.server->connections() == 1);
}

TEST_CASE("bad input is answered and closes that connection only", "[broker]") {
  BrokerFixture fx;
  auto other = mq::net::Channel::create(fx.io.io(), fx.server->local_address());
  REQUIRE(other->call(Type::topic_info, "", 5000ms));
  fx.send_ok({make_message("t", 0, "first")});

  std::string two = send_payload({make_message("t", 0, "x")});
  mq::store_u32(two.data(), 2);  // claims two records, holds one
  std::string torn = send_payload({make_message("t", 0, "x")});
  torn.pop_back();
  std::string flipped = send_payload({make_message("t", 0, "x")});
  flipped.back() ^= 1;  // the record's checksum no longer matches
  struct Bad {
    Type type;
    std::string payload;
    Code status;
    std::string says;
  };
  std::vector<Bad> bad = {
      {Type::send, std::string("\x02\x00\x00\x00garbage", 11), Code::bad_request, "send request"},
      {Type::send, std::string(4, '\0'), Code::bad_request, "zero record count"},
      {Type::send, two, Code::bad_request, "count says 2"},
      {Type::send, torn, Code::bad_request, "truncated"},
      {Type::send, flipped, Code::corrupt_record, "record 0: record checksum mismatch"},
      {Type::pull, "\x01", Code::bad_request, "pull request: malformed"},
      {Type::topic_info, "\x05", Code::bad_request, "topic_info request: malformed"},
      {Type::hello, std::string("\x05\x00" "ab", 4), Code::bad_request, "hello request: malformed"},
      {Type::hello, std::string("\x01\x00" "abc", 5), Code::bad_request, "hello request: malformed"},
      {Type::auth_challenge, "x", Code::bad_request, "auth_challenge request: payload must be empty"},
      {static_cast<Type>(200), "", Code::unknown_type, "unknown request type 200"},
      {static_cast<Type>(0), "", Code::unknown_type, "unknown request type 0"},
  };
  for (auto& b : bad) {
    INFO(b.says);
    fx.send_ok({make_message("t", 0, "before")});
    auto ch = mq::net::Channel::create(fx.io.io(), fx.server->local_address());
    auto f = ch->call(b.type, b.payload, 5000ms);
    REQUIRE(f);
    CHECK(f->header.status == b.status);
    CHECK(error_text(*f).find(b.says) != std::string::npos);
    CHECK(mq::storage::test::eventually([&] { return fx.server->connections() == 2; }));
  }
  // The other client and the stored messages are untouched; nothing bad was stored.
  auto info = other->call(Type::topic_info, "", 5000ms);
  REQUIRE(info);
  CHECK(info->header.status == Code::ok);
  auto p = fx.pull_ok("t", 0, 0);
  CHECK(p.count == bad.size() + 1);
}

TEST_CASE("a producer may not set the broker's % properties", "[broker]") {
  BrokerFixture fx;
  auto forged = make_message("public", 0, "forged");
  forged.set_prop("note", "fine");
  forged.set_prop(mq::protocol::kPropOriginTopic, "audit");
  auto f = fx.call(Type::send, send_payload({make_message("public", 0, "ok"), forged}));
  CHECK(f.header.status == Code::bad_request);
  CHECK(error_text(f).find("property %ORIGIN_TOPIC is reserved for the broker") != std::string::npos);
  CHECK(fx.store->queue_info("public", 0).max_offset == 0);  // nothing of the request stored
  // mq-replay --dlq marks what it re-drove; ordinary names are anyone's
  auto redriven = make_message("public", 0, "redriven");
  redriven.set_prop(mq::protocol::kPropRedriven, "1");
  redriven.set_prop("percent%inside", "fine");
  fx.send_ok({redriven});
  CHECK(fx.store->queue_info("public", 0).max_offset == 1);
}

TEST_CASE("hello tells the role, address and limits", "[broker]") {
  BrokerFixture fx;
  std::string payload;
  mq::ByteWriter(payload).str16("test/1");
  auto f = fx.call(Type::hello, payload);
  REQUIRE(f.header.status == Code::ok);
  mq::protocol::HelloResponse h;
  REQUIRE(h.decode(f.payload));
  CHECK(h.role == mq::protocol::Role::master);
  CHECK(h.broker_addr == fx.server->local_address());
  CHECK(h.max_message_size == 4u << 20);
  CHECK(h.default_queues == 4);
}

TEST_CASE("topic registry rejects a damaged topics file and adopts store queues", "[broker]") {
  BrokerTempDir dir;
  REQUIRE(mq::write_file_atomic(dir.path() / "topics.json", "{\"topics\": {\"a\": {\"queues\": 0}}}"));
  auto bad = mq::broker::TopicRegistry::open(dir.path());
  REQUIRE_FALSE(bad);
  CHECK(bad.status().code() == mq::Code::corruption);
  CHECK(bad.status().message().find("topics.json") != std::string::npos);
  REQUIRE(mq::write_file_atomic(dir.path() / "topics.json", "not json"));
  CHECK_FALSE(mq::broker::TopicRegistry::open(dir.path()));

  fs::remove(dir.path() / "topics.json");
  auto reg = mq::broker::TopicRegistry::open(dir.path());
  REQUIRE(reg);
  REQUIRE((*reg)->ensure("x", 2));
  REQUIRE((*reg)->adopt({{"x", 5}, {"y", 0}}, 4));
  CHECK((*reg)->queues("x") == 6u);
  CHECK((*reg)->queues("y") == 4u);
  auto again = mq::broker::TopicRegistry::open(dir.path());
  REQUIRE(again);
  CHECK((*again)->list().size() == 2);
}

TEST_CASE("topic registry keeps the broker's internal topics across restarts", "[broker]") {
  BrokerTempDir dir;
  {
    auto reg = mq::broker::TopicRegistry::open(dir.path());
    REQUIRE(reg);
    REQUIRE((*reg)->ensure("%SCHEDULE%", 18));
    REQUIRE((*reg)->ensure("%RETRY%billing", 1));
  }
  auto again = mq::broker::TopicRegistry::open(dir.path());
  REQUIRE(again);
  CHECK((*again)->queues("%SCHEDULE%") == 18u);
  CHECK((*again)->queues("%RETRY%billing") == 1u);
  REQUIRE(mq::write_file_atomic(dir.path() / "topics.json",
                                "{\"topics\": {\"%bad name\": {\"queues\": 1}}}"));
  CHECK_FALSE(mq::broker::TopicRegistry::open(dir.path()));
}

TEST_CASE("topic registry refuses user topics past the limit, never reserved ones", "[broker]") {
  BrokerTempDir dir;
  {
    auto reg = mq::broker::TopicRegistry::open(dir.path());
    REQUIRE(reg);
    REQUIRE((*reg)->ensure("a", 1, 2));
    REQUIRE((*reg)->ensure("b", 1, 2));
    auto a = (*reg)->ensure("a", 3, 2);  // existing topics are never refused
    REQUIRE(a);
    CHECK(*a == 1u);
    auto c = (*reg)->ensure("c", 1, 2);
    REQUIRE_FALSE(c);
    CHECK(c.status().code() == mq::Code::limit_reached);
    CHECK(c.status().message().find("topic c") != std::string::npos);
    CHECK(c.status().message().find("--max-topics 2") != std::string::npos);
    CHECK_FALSE((*reg)->queues("c"));
    // the broker's own topics: created at the limit, and not counted
    REQUIRE((*reg)->ensure("%RETRY%g", 1, 2));
    REQUIRE((*reg)->ensure("%DLQ%g", 1, 2));
    REQUIRE((*reg)->ensure("%SCHEDULE%", 18, 2));
    CHECK((*reg)->user_topics() == 2);
    CHECK((*reg)->list().size() == 5);
    // without a limit (a slave copying its master's topics)
    REQUIRE((*reg)->ensure("c", 1));
    CHECK((*reg)->user_topics() == 3);
  }
  auto again = mq::broker::TopicRegistry::open(dir.path());
  REQUIRE(again);
  CHECK((*again)->user_topics() == 3);  // counted again from the file
  CHECK_FALSE((*again)->ensure("d", 1, 3));
  REQUIRE((*again)->ensure("d", 1, 4));
  REQUIRE((*again)->adopt({{"e", 0}}, 1));  // found in the store: kept whatever the limit
  CHECK((*again)->user_topics() == 5);
}

TEST_CASE("auto-create past --max-topics answers TOO_MANY_TOPICS naming the topic", "[broker]") {
  mq::broker::BrokerConfig cfg;
  cfg.max_topics = 2;
  BrokerFixture fx(cfg);
  fx.send_ok({make_message("one", 0, "1")});
  fx.send_ok({make_message("two", 0, "2")});
  auto f = fx.call(Type::send, send_payload({make_message("two", 0, "x"), make_message("three", 0, "3")}));
  CHECK(f.header.status == Code::too_many_topics);
  CHECK(mq::protocol::code_name(f.header.status) == "TOO_MANY_TOPICS");
  CHECK(error_text(f).find("topic three") != std::string::npos);
  CHECK(error_text(f).find("--max-topics 2") != std::string::npos);
  auto st = mq::protocol::status_from_response(f.header.status, f.payload);
  CHECK(st.code() == mq::Code::limit_reached);
  CHECK_FALSE(fx.topics->queues("three"));
  CHECK(fx.pull_ok("two", 0, 0).count == 1);  // nothing of the refused batch was stored
  fx.send_ok({make_message("one", 0, "still")});  // existing topics keep working
  // the broker's own topics are exempt: a retry or a dead letter never fails on the limit
  REQUIRE(fx.topics->ensure("%DLQ%g", 1, cfg.max_topics));
  CHECK(fx.pull_ok("one", 0, 0).count == 2);
}

// GroupService (group_service.h): when commits are saved and answered.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <future>

#include "broker/broker.h"
#include "broker/delay_scheduler.h"
#include "broker/group_service.h"
#include "broker/topics.h"
#include "net/channel.h"
#include "net/server.h"
#include "protocol/group_messages.h"
#include "storage/message_store.h"
#include "util/bytes.h"
#include "util/file.h"

using mq::protocol::Code;
using mq::protocol::Frame;
using mq::protocol::Type;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct GroupFixture {
  explicit GroupFixture(mq::Millis persist_every) {
    std::string tmpl = (fs::temp_directory_path() / "mq-group-test-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    mq::storage::StoreOptions so;
    so.dir = dir;
    auto s = mq::storage::MessageStore::open(so);
    REQUIRE(s);
    store = std::move(*s);
    auto t = mq::broker::TopicRegistry::open(dir);
    REQUIRE(t);
    topics = std::move(*t);
    broker = std::make_unique<mq::broker::Broker>(io.io(), *store, *topics, mq::broker::BrokerConfig{});
    auto levels = mq::broker::parse_delay_levels(mq::broker::kDefaultDelayLevels);
    REQUIRE(levels);
    auto g = mq::broker::GroupService::create(io.io(), *broker, *store, *topics, dir, *levels, persist_every);
    REQUIRE(g);
    groups = std::move(*g);
    auto srv = mq::net::Server::listen(
        io.io(), "127.0.0.1:0", {},
        [this](Frame f, mq::net::Responder r) { broker->handle(std::move(f), std::move(r)); },
        [this](uint64_t id) { broker->connection_closed(id); });
    REQUIRE(srv);
    server = std::move(*srv);
    channel = mq::net::Channel::create(io.io(), server->local_address());
  }
  ~GroupFixture() {
    server->stop_accepting();
    if (groups) (void)groups->close();
    broker->shutdown(2000ms);
    (void)store->close();
    channel.reset();
    server->close_all();
    std::error_code ec;
    fs::remove_all(dir, ec);
  }

  // A new group's --from: needs no membership.
  std::string init_commit(const std::string& group, uint32_t queue) {
    mq::protocol::CommitRequest req;
    req.group = group;
    req.client_id = "c1";
    req.init_only = true;
    req.entries.push_back({{"t", queue}, 0, 0});
    std::string out;
    req.encode(out);
    return out;
  }

  fs::path dir;
  std::unique_ptr<mq::storage::MessageStore> store;
  std::unique_ptr<mq::broker::TopicRegistry> topics;
  mq::net::IoThread io;
  std::unique_ptr<mq::broker::Broker> broker;
  std::unique_ptr<mq::broker::GroupService> groups;
  std::unique_ptr<mq::net::Server> server;
  std::shared_ptr<mq::net::Channel> channel;
};

}  // namespace

TEST_CASE("commits are saved and answered in milliseconds, not at the next tick", "[broker][groups]") {
  // A tick longer than the test: answers before close() come from the saves commits ask for.
  GroupFixture fx(mq::Millis(600000));
  // A save that answers no commit (as the ticks mostly are; group_info saves first)
  // does not hold the next commit back.
  std::string info;
  mq::ByteWriter(info).str16("");
  auto shown = fx.channel->call(Type::group_info, info, 5000ms);
  REQUIRE(shown);
  REQUIRE(shown->header.status == Code::ok);
  // One after the other (each waits for its answer): the second comes ten times the
  // first one's save after it.
  for (uint32_t q = 0; q < 3; ++q) {
    auto r = fx.channel->call(Type::commit_offsets, fx.init_commit("g" + std::to_string(q), q), 5000ms);
    REQUIRE(r);
    CHECK(r->header.status == Code::ok);
  }
  auto text = mq::read_file(fx.dir / "offsets.json");
  REQUIRE(text);
  CHECK(text->find("\"g2\"") != std::string::npos);
}

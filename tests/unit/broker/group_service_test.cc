// GroupService (group_service.h): when commits are saved and answered.
#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <future>

#include "broker/delay_scheduler.h"
#include "broker/group_service.h"
#include "net/channel.h"
#include "protocol/group_messages.h"
#include "util/bytes.h"
#include "util/file.h"
#include "served_broker.h"

using mq::protocol::Code;
using mq::protocol::Frame;
using mq::protocol::Type;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

struct GroupFixture {
  explicit GroupFixture(mq::Millis persist_every)
      : sb([&](mq::broker::test::ServedBroker& b) {
          auto levels = mq::broker::parse_delay_levels(mq::broker::kDefaultDelayLevels);
          REQUIRE(levels);
          auto g = mq::broker::GroupService::create(b.io.io(), *b.broker, *b.store, *b.topics, b.dir, *levels,
                                                    persist_every);
          REQUIRE(g);
          groups = std::move(*g);
        }),
        dir(sb.dir),
        channel(mq::net::Channel::create(sb.io.io(), sb.server->local_address())) {}
  ~GroupFixture() {
    (void)groups->close();
    sb.stop();       // nothing calls the group service's handlers any more
    groups.reset();  // its timers go before the io_context they run on
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

  std::unique_ptr<mq::broker::GroupService> groups;  // set while sb is made
  mq::broker::test::ServedBroker sb;
  const fs::path& dir;
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

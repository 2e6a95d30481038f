#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "broker/offset_table.h"

namespace fs = std::filesystem;
using mq::broker::OffsetTable;
using mq::protocol::QueueRef;

namespace {
struct TmpDir {
  fs::path p;
  TmpDir() {
    char t[] = "/tmp/mq-offsets.XXXXXX";
    p = mkdtemp(t);
  }
  ~TmpDir() { fs::remove_all(p); }
};
}  // namespace

TEST_CASE("offset table commits with epochs and survives reopen", "[broker]") {
  TmpDir d;
  auto t = OffsetTable::open(d.p / "offsets.json");
  REQUIRE(t);
  QueueRef q{"orders", 2};
  CHECK((*t)->get("g", q).offset == -1);
  CHECK((*t)->commit("g", q, 5, 0, /*init_only=*/true).accepted);
  CHECK_FALSE((*t)->commit("g", q, 0, 0, /*init_only=*/true).accepted);  // already initialised
  CHECK((*t)->commit("g", q, 9, 0, false).accepted);
  REQUIRE((*t)->persist());
  auto t2 = OffsetTable::open(d.p / "offsets.json");
  REQUIRE(t2);
  CHECK((*t2)->get("g", q).offset == 9);
  CHECK((*t2)->groups() == std::vector<std::string>{"g"});
}

TEST_CASE("a missing offsets file is noticed and can be written empty", "[broker]") {
  TmpDir d;
  auto t = OffsetTable::open(d.p / "offsets.json");
  REQUIRE(t);
  CHECK((*t)->was_missing());
  REQUIRE((*t)->persist());  // nothing changed: not written
  CHECK_FALSE(fs::exists(d.p / "offsets.json"));
  REQUIRE((*t)->persist(/*always=*/true));  // as the broker does at start: a later absence means removal
  REQUIRE(fs::exists(d.p / "offsets.json"));
  auto t2 = OffsetTable::open(d.p / "offsets.json");
  REQUIRE(t2);
  CHECK_FALSE((*t2)->was_missing());
  CHECK((*t2)->groups().empty());
}

TEST_CASE("saved entries are what the file holds: a commit shows there once persisted", "[broker]") {
  TmpDir d;
  QueueRef q{"orders", 0};
  {
    auto t = OffsetTable::open(d.p / "offsets.json");
    REQUIRE(t);
    REQUIRE((*t)->commit("g", q, 7, 0, false).accepted);
    REQUIRE((*t)->persist());
  }
  auto t = OffsetTable::open(d.p / "offsets.json");
  REQUIRE(t);
  auto saved = [&] {
    auto e = (*t)->saved_entries("g");
    return e.size() == 1 ? e[0].offset : -2;
  };
  CHECK(saved() == 7);  // loaded from the file
  REQUIRE((*t)->commit("g", q, 12, 0, false).accepted);
  CHECK((*t)->entries("g").at(0).offset == 12);
  CHECK(saved() == 7);  // not in the file yet: a kill -9 now would come back with 7
  REQUIRE((*t)->persist());
  CHECK(saved() == 12);
  (*t)->clamp(q, 10);  // recovery cut the log: offsets past it are not shown either
  CHECK(saved() == 10);
  CHECK((*t)->entries("g").at(0).offset == 10);
  CHECK((*t)->saved_entries("other").empty());
}

TEST_CASE("a reset bumps the epoch so a stale commit cannot undo it", "[broker]") {
  TmpDir d;
  auto t = std::move(*OffsetTable::open(d.p / "offsets.json"));
  QueueRef q{"t", 0};
  REQUIRE(t->commit("g", q, 100, 0, false).accepted);
  auto r = t->reset("g", q, /*expected=*/100, 10, false);
  CHECK(r.applied);
  CHECK(r.old_offset == 100);
  auto stale = t->commit("g", q, 120, 0, false);
  CHECK_FALSE(stale.accepted);
  CHECK(stale.offset == 10);
  CHECK(stale.epoch == 1);
  CHECK(t->commit("g", q, 11, 1, false).accepted);
  // compare-and-set: the offset moved since the plan
  auto cas = t->reset("g", q, /*expected=*/10, 0, false);
  CHECK_FALSE(cas.applied);
  CHECK(t->get("g", q).offset == 11);
  auto dry = t->reset("g", q, 11, 0, /*dry_run=*/true);
  CHECK(dry.applied);
  CHECK(t->get("g", q).offset == 11);
}

TEST_CASE("a corrupt offsets file is reported, not ignored", "[broker]") {
  TmpDir d;
  std::ofstream(d.p / "offsets.json") << "{\"offsets\": [ {\"group\": 1} ]}";
  auto t = OffsetTable::open(d.p / "offsets.json");
  REQUIRE_FALSE(t);
  CHECK(t.status().code() == mq::Code::corruption);
  // Fields of the wrong type or out of range are errors too, never an exception.
  for (const char* entry : {R"({"group": "g", "topic": "t", "queue": 0, "offset": 1, "epoch": "x"})",
                            R"({"group": "g", "topic": "t", "queue": 0, "offset": 1, "epoch": 4294967296})",
                            R"({"group": "g", "topic": "t", "queue": 4294967296, "offset": 1})"}) {
    std::ofstream(d.p / "offsets.json") << "{\"offsets\": [" << entry << "]}";
    auto u = OffsetTable::open(d.p / "offsets.json");
    REQUIRE_FALSE(u);
    CHECK(u.status().message().find("malformed entry") != std::string::npos);
  }
}

TEST_CASE("replicated offsets merge: a higher epoch wins, else the higher offset", "[broker][replication]") {
  using E = OffsetTable::Entry;
  auto same = [](E a, E b) { return a.offset == b.offset && a.epoch == b.epoch; };
  CHECK(same(OffsetTable::reconcile({10, 1}, {20, 1}), {20, 1}));  // committed further elsewhere
  CHECK(same(OffsetTable::reconcile({20, 1}, {10, 1}), {20, 1}));  // never rewinds
  CHECK(same(OffsetTable::reconcile({20, 1}, {5, 2}), {5, 2}));    // an admin reset there
  CHECK(same(OffsetTable::reconcile({5, 2}, {20, 1}), {5, 2}));    // a stale copy cannot undo it
  CHECK(same(OffsetTable::reconcile({-1, 0}, {3, 0}), {3, 0}));    // unknown here

  TmpDir d;
  auto t = OffsetTable::open(d.p / "offsets.json");
  REQUIRE(t);
  QueueRef a{"orders", 0}, b{"orders", 1};
  REQUIRE((*t)->commit("g", a, 100, 0, false).accepted);
  REQUIRE((*t)->commit("g", b, 50, 0, false).accepted);
  uint64_t v = (*t)->version();
  CHECK((*t)->merge({{"g", a, 80, 0}}) == 0);  // lower: kept
  CHECK((*t)->version() == v);
  CHECK((*t)->merge({{"g", a, 120, 0}, {"g", b, 50, 0}, {"h", a, 7, 3}}) == 2);
  CHECK((*t)->version() > v);
  CHECK((*t)->get("g", a).offset == 120);
  CHECK((*t)->get("h", a).offset == 7);
  CHECK((*t)->get("h", a).epoch == 3);
  // a member's commit with the epoch it knows still works after a merge
  CHECK((*t)->commit("h", a, 9, 3, false).accepted);
  // merged entries persist like commits (a promoted slave continues from them)
  REQUIRE((*t)->persist());
  auto t2 = OffsetTable::open(d.p / "offsets.json");
  REQUIRE(t2);
  CHECK((*t2)->get("g", a).offset == 120);
  CHECK((*t2)->get("h", a).offset == 9);
  auto snap = (*t2)->snapshot();
  REQUIRE(snap.size() == 3);
  CHECK(snap[0] == mq::protocol::GroupOffset{"g", a, 120, 0});
}

TEST_CASE("a slave offers its master only the offsets it holds above the master's", "[broker][replication]") {
  using mq::protocol::GroupOffset;
  QueueRef a{"t", 0}, b{"t", 1}, c{"t", 2};
  std::vector<GroupOffset> master = {{"g", a, 10, 0}, {"g", b, 30, 1}};
  std::vector<GroupOffset> slave = {{"g", a, 15, 0}, {"g", b, 40, 0}, {"g", c, 2, 0}};
  // a: committed further on the slave; b: the master's reset (epoch 1) wins; c: unknown there
  auto ahead = mq::broker::offsets_ahead(slave, master);
  CHECK(ahead == std::vector<GroupOffset>{{"g", a, 15, 0}, {"g", c, 2, 0}});
  CHECK(mq::broker::offsets_ahead(master, master).empty());
  CHECK(mq::broker::offsets_ahead(slave, {}).size() == 3);  // after a reconnect: everything
}

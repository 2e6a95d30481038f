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
}

// Preallocation: zeros written and synced past the log end (commit_log.h).
// They must never become part of the log: a clean close leaves exactly the
// log, a crash leaves zeros that recovery ends the log at without calling it
// a cut, real bytes among them are cut, rolled segments keep none, and a
// failure to write them (a full disk) is no error for appends.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

#include "storage/fault_fs.h"
#include "storage/message_store.h"
#include "storage/store_test_util.h"

using namespace mq;
using namespace mq::storage;
using namespace mq::storage::test;

namespace {

const char* kSeg0 = "/data/commitlog/00000000000000000000";

StoreOptions prealloc_options(FaultFileSystem& ffs, uint64_t segment_size = 1u << 20) {
  StoreOptions o;
  o.dir = "/data";
  o.fs = &ffs;
  o.segment_size = segment_size;
  o.preallocate = 64u << 10;  // 8 KiB rounds
  return o;
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

// Appends n records to queue 0 of "t" and returns the log end.
uint64_t fill(MessageStore& s, int n, const std::string& tag) {
  for (int i = 0; i < n; ++i)
    REQUIRE(append_wait(s, make_record("t", 0, tag + "-" + std::to_string(i) + std::string(200, 'b'))).status.is_ok());
  return s.log_end();
}

// Appends n records, waits until the zeros reach at least half of
// `preallocate` past them, and cuts the power (every acked append was synced,
// and so were the zeros); returns the log end.
uint64_t crash_in_zeros(FaultFileSystem& ffs, const StoreOptions& o, int n) {
  uint64_t end;
  {
    auto store = open_store(o);
    end = fill(*store, n, "a");
    REQUIRE(eventually([&] { return ffs.content(kSeg0).size() >= end + (32u << 10); }));
    ffs.crash();
  }
  ffs.restart();
  return end;
}

}  // namespace

TEST_CASE("preallocated zeros follow the log end and go at a clean close", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto o = prealloc_options(ffs);
  auto store = open_store(o);
  uint64_t end = fill(*store, 20, "a");
  // The zeroer runs in the background: it keeps at least half of `preallocate`
  // (and at most all of it) past the end.
  REQUIRE(eventually([&] { return ffs.content(kSeg0).size() >= end + (32u << 10); }));
  std::string c = ffs.content(kSeg0);
  CHECK(c.size() <= end + (64u << 10));
  CHECK(all_zero(std::string_view(c).substr(end)));
  CHECK(store->stats().preallocated_bytes >= (48u << 10));
  // Appends go into the zeros: the log reads back whole.
  end = fill(*store, 20, "b");
  auto rr = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(rr);
  CHECK(rr->count == 40);
  REQUIRE(store->close().is_ok());
  CHECK(ffs.content(kSeg0).size() == end);  // exactly the log
  store.reset();
  // Power loss right after the clean close changes nothing: the cut was synced.
  ffs.crash();
  ffs.restart();
  RecoveryReport rep;
  store = open_store(o, &rep);
  CHECK(rep.clean);
  CHECK(store->queue_info("t", 0).max_offset == 40);
}

TEST_CASE("a crash in preallocated zeros ends the log there without a cut", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto o = prealloc_options(ffs);
  uint64_t end = crash_in_zeros(ffs, o, 30);
  REQUIRE(ffs.content(kSeg0).size() > end);
  RecoveryReport rep;
  auto store = open_store(o, &rep);
  CHECK_FALSE(rep.clean);
  CHECK(rep.cut_reason == "");
  CHECK(rep.bytes_cut == 0);
  CHECK(rep.log_end == end);
  CHECK(store->queue_info("t", 0).max_offset == 30);
  // The log continues at its end, not after the zeros.
  auto r = append_wait(*store, make_record("t", 0, "after"));
  REQUIRE(r.status.is_ok());
  CHECK(r.appended[0].offset == 30);
  auto rr = store->read("t", 0, 30, 10, 1 << 20);
  REQUIRE(rr);
  REQUIRE(rr->count == 1);
  CHECK(messages(*rr)[0].body == "after");
}

TEST_CASE("bytes among the preallocated zeros are cut and reported", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto o = prealloc_options(ffs);
  uint64_t end = crash_in_zeros(ffs, o, 10);
  SECTION("a torn record at the end") {
    std::string c = ffs.content(kSeg0);
    std::string rec = make_record("t", 0, "torn");
    c.replace(end, rec.size() / 2, rec.substr(0, rec.size() / 2));
    ffs.set_content(kSeg0, c);
  }
  SECTION("a stray byte far behind the end") {
    std::string c = ffs.content(kSeg0);
    c[c.size() - 3] = 'x';
    ffs.set_content(kSeg0, c);
  }
  RecoveryReport rep;
  auto store = open_store(o, &rep);
  CHECK(rep.cut_reason != "");
  CHECK(rep.bytes_cut > 0);
  CHECK(rep.log_end == end);
  CHECK(store->queue_info("t", 0).max_offset == 10);
}

TEST_CASE("a record damaged before the preallocated zeros: the bytes cut are the records', not the zeros",
          "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto o = prealloc_options(ffs);
  uint64_t end = crash_in_zeros(ffs, o, 10);
  uint64_t rec = end / 10;  // ten records of one size
  REQUIRE(rec * 10 == end);
  std::string c = ffs.content(kSeg0);
  REQUIRE(c.size() >= end + (32u << 10));
  c[8 * rec + rec - 5] ^= 0x10;  // the body of the 9th record
  ffs.set_content(kSeg0, c);
  RecoveryReport rep;
  auto store = open_store(o, &rep);
  CHECK(rep.log_end == 8 * rec);
  CHECK(rep.bytes_cut == 2 * rec);  // it was the file's size past 8 * rec: the zeros too
  CHECK(store->queue_info("t", 0).max_offset == 8);
}

TEST_CASE("rolled segments keep no zeros, the active one does", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto o = prealloc_options(ffs, 128u << 10);
  auto store = open_store(o);
  for (int round = 0; round < 12; ++round) {
    fill(*store, 100, "r" + std::to_string(round));
    // Let the zeroer catch up now and then so that rolls meet zeros.
    if (round % 3 == 0) std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  auto check_rolled = [&] {
    auto files = ffs.files();
    std::vector<std::pair<uint64_t, std::string>> segs;
    for (auto& f : files)
      if (f.rfind("/data/commitlog/", 0) == 0) segs.push_back({std::stoull(f.substr(16)), f});
    REQUIRE(segs.size() >= 3);
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      INFO(segs[i].second);
      CHECK(ffs.content(segs[i].second).size() == segs[i + 1].first - segs[i].first);
    }
    return segs.back().second;
  };
  check_rolled();
  CHECK(store->stats().preallocated_bytes > 0);
  REQUIRE(store->close().is_ok());
  std::string last = check_rolled();
  CHECK(ffs.content(last).size() + std::stoull(last.substr(16)) == store->log_end());
  store.reset();
  RecoveryReport rep;
  store = open_store(o, &rep);
  CHECK(rep.clean);
  CHECK(store->queue_info("t", 0).max_offset == 1200);
}

TEST_CASE("zeros left after an older segment (an undone cut) are not a gap", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto o = prealloc_options(ffs, 128u << 10);
  {
    auto store = open_store(o);
    fill(*store, 1000, "a");
    ffs.crash();  // unclean: recovery checks how the segments line up
  }
  ffs.restart();
  std::string first = kSeg0;
  REQUIRE(ffs.content(first).size() > 0);
  REQUIRE(ffs.content(first).size() < (128u << 10));
  // The cut at the roll did not reach the disk: the zeros are back.
  ffs.set_content(first, ffs.content(first) + std::string(40000, '\0'));
  RecoveryReport rep;
  auto store = open_store(o, &rep);
  CHECK(rep.cut_reason == "");
  CHECK(store->queue_info("t", 0).max_offset == 1000);
  CHECK(ffs.content(first).size() < (128u << 10));
}

TEST_CASE("a full disk stops preallocation, not appends", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto o = prealloc_options(ffs);
  // The disk fills up 12 KiB into the segment: room for a few appends, not
  // for the zeros (they start a round, 8 KiB, past the end).
  ffs.set_file_limit(12u << 10, "commitlog/");
  auto store = open_store(o);
  uint64_t end = fill(*store, 3, "a");
  REQUIRE(eventually([&] { return store->stats().preallocation_failures >= 1; }));
  CHECK(store->health().is_ok());
  CHECK(store->stats().preallocated_bytes == 0);
  end = fill(*store, 3, "b");  // below the limit: fine
  ffs.set_file_limit(std::nullopt);
  end = fill(*store, 2, "c");  // the zeroer waits 5 s before it tries again: these grow the file
  CHECK(store->health().is_ok());
  auto rr = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(rr);
  CHECK(rr->count == 8);
  REQUIRE(store->close().is_ok());
  CHECK(ffs.content(kSeg0).size() == end);
  store.reset();
  ffs.crash();
  ffs.restart();
  store = open_store(o);
  CHECK(store->queue_info("t", 0).max_offset == 8);
}

// Preallocation: zeros written and synced past the log end (commit_log.h).
// They must never become part of the log: a clean close leaves exactly the
// log, a crash leaves zeros that recovery ends the log at without calling it
// a cut, real bytes among them are cut, rolled segments keep none, and a
// failure to write them (a full disk) is no error for appends.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <thread>

#include "storage/commit_log.h"
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
  // (Both: the size passes end + 32 KiB while later rounds still run, on a loaded machine
  // before the zeros reach 48 KiB.)
  REQUIRE(eventually([&] {
    return ffs.content(kSeg0).size() >= end + (32u << 10) && store->stats().preallocated_bytes >= (48u << 10);
  }));
  std::string c = ffs.content(kSeg0);
  CHECK(c.size() <= end + (64u << 10));
  CHECK(all_zero(std::string_view(c).substr(end)));
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

TEST_CASE("no zeros while the fdatasyncs cover 48 KiB or more each, again once they are small",
          "[storage][prealloc]") {
  FaultFileSystem ffs;
  ffs.set_sync_delay(std::chrono::microseconds(2000));  // about 500 appends a second
  auto o = prealloc_options(ffs, 64u << 20);
  o.preallocate = 256u << 10;
  auto store = open_store(o);
  auto append_for = [&](std::chrono::milliseconds d, size_t body) {
    auto until = std::chrono::steady_clock::now() + d;
    int i = 0;
    while (std::chrono::steady_clock::now() < until)
      REQUIRE(append_wait(*store, make_record("t", 0, std::to_string(i++) + std::string(body, 'b'))).status.is_ok());
  };
  // One append per fdatasync (each waits for its ack), 64 KiB each. The first zeros go
  // out at once, before there is a sample.
  append_for(std::chrono::milliseconds(400), 64u << 10);
  uint64_t z1 = store->stats().preallocated_bytes;
  CHECK(z1 > 0);
  append_for(std::chrono::milliseconds(300), 64u << 10);
  CHECK(store->stats().preallocated_bytes == z1);
  CHECK(ffs.content(kSeg0).size() == store->log_end());  // the appends grew the file
  // Small groups: zeros ahead again.
  REQUIRE(eventually([&] {
    append_for(std::chrono::milliseconds(20), 100);
    return store->stats().preallocated_bytes > z1 && ffs.content(kSeg0).size() > store->log_end();
  }));
}

TEST_CASE("with --flush async no zeros are written ahead", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto o = prealloc_options(ffs);
  o.flush = FlushMode::async;
  o.flush_interval = Millis(5);
  auto store = open_store(o);
  uint64_t end = fill(*store, 20, "a");
  // A zeroer would have written 32 KiB within milliseconds (the test above); give it
  // many flush intervals.
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(store->stats().preallocated_bytes == 0);
  CHECK(ffs.content(kSeg0).size() == end);
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

// Waits until the zeros reach `ahead` past the log end and stay there (the zeroer is idle).
void settle_zeros(FaultFileSystem& ffs, MessageStore& s, uint64_t ahead) {
  REQUIRE(eventually([&] { return ffs.content(kSeg0).size() >= s.log_end() + ahead; }));
  uint64_t last = 0;
  REQUIRE(eventually([&] {
    uint64_t now = s.stats().preallocated_bytes;
    bool same = now == last;
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return same;
  }));
}

// A fresh segment's first zeros start some way (at most 20 KiB) past its end
// (commit_log.cc): fills the segment past that gap, so that the next appends
// land in the zeros, which reach `ahead` past the end once this returns.
void fill_past_gap(FaultFileSystem& ffs, MessageStore& s, uint64_t ahead) {
  REQUIRE(append_wait(s, make_record("t", 0, std::string(20000, 'f'))).status.is_ok());
  settle_zeros(ffs, s, ahead);
  for (int i = 0; i < 3; ++i) REQUIRE(append_wait(s, make_record("t", 0, std::string(8000, 'g'))).status.is_ok());
  settle_zeros(ffs, s, ahead);
}

// A commit log in /log (1 MiB segments) keeping 64 KiB of zeros ahead.
std::unique_ptr<CommitLog> open_log(FaultFileSystem& ffs) {
  REQUIRE(ffs.mkdirs("/log").is_ok());
  auto log = CommitLog::open(ffs, "/log", 1u << 20);
  REQUIRE(log.status().to_string() == "ok");
  (*log)->start_preallocation(64u << 10);
  return std::move(*log);
}

TEST_CASE("with sync flush a group's records in the zeros take one log write, by its round", "[storage][prealloc]") {
  FaultFileSystem ffs;
  ffs.set_sync_delay(std::chrono::microseconds(5000));  // appenders gather behind each fdatasync
  auto o = prealloc_options(ffs);
  o.preallocate = 256u << 10;
  auto store = open_store(o);
  fill_past_gap(ffs, *store, 128u << 10);
  uint64_t writes0 = ffs.write_count("/commitlog/"), syncs0 = store->stats().log_syncs;
  constexpr int kAppenders = 16;
  for (auto& st : append_concurrently(*store, kAppenders)) REQUIRE(st.is_ok());
  uint64_t writes = ffs.write_count("/commitlog/") - writes0, rounds = store->stats().log_syncs - syncs0;
  CHECK(writes <= rounds);  // per append it would be one each
  CHECK(writes < kAppenders);
  // Acked means written and synced: a power cut keeps them all.
  ffs.crash();
  ffs.restart();
  store.reset();
  store = open_store(o);
  auto rr = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(rr);
  CHECK(messages(*rr).size() == kAppenders + 4);
}

TEST_CASE("a deferred batch is not read before sync_active writes it", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto log = open_log(ffs);
  CommitLog& l = *log;
  // Outside the zeros (before them, in a fresh segment) it is written at once.
  auto first = l.append_deferred(std::string(20000, 'a'), 1);
  REQUIRE(first.status().to_string() == "ok");
  const char* seg = "/log/00000000000000000000";
  CHECK(ffs.content(seg).substr(0, 20000) == std::string(20000, 'a'));
  REQUIRE(eventually([&] { return l.zeroed_bytes() >= (32u << 10); }));
  // Past the gap before the first zeros.
  REQUIRE(l.append(std::string(24000, 'b'), 1).status().to_string() == "ok");
  REQUIRE(eventually([&] { return ffs.content(seg).size() >= 44000 + (32u << 10); }));
  auto pos = l.append_deferred("tail-bytes", 2);
  REQUIRE(pos.status().to_string() == "ok");
  CHECK(*pos == 44000);
  CHECK(l.end() == 44010);
  char buf[10];
  CHECK(l.read(*pos, buf, sizeof buf).code() == Code::not_found);  // not the zeros under it
  CHECK(l.read(0, buf, sizeof buf).is_ok());                       // what is written reads
  CHECK(ffs.content(seg).substr(44000, 10) == std::string(10, '\0'));
  REQUIRE(l.sync_active().is_ok());
  REQUIRE(l.read(*pos, buf, sizeof buf).is_ok());
  CHECK(std::string(buf, sizeof buf) == "tail-bytes");
  CHECK(ffs.content(seg).substr(44000, 10) == "tail-bytes");
  // A large batch is written at once even in the zeros (a copy would cost more than it saves).
  auto big = l.append_deferred(std::string(9000, 'c'), 3);
  REQUIRE(big.status().to_string() == "ok");
  CHECK(ffs.content(seg).substr(44010, 9000) == std::string(9000, 'c'));
  REQUIRE(l.read(*big, buf, sizeof buf).is_ok());
  REQUIRE(l.stop_preallocation().is_ok());
  CHECK(ffs.content(seg).size() == 53010);
}

TEST_CASE("a failed write of a round's records poisons the store and acks none of them", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto o = prealloc_options(ffs);
  auto store = open_store(o);
  fill_past_gap(ffs, *store, 32u << 10);
  for (int i = 0; i < 3; ++i) REQUIRE(append_wait(*store, make_record("t", 0, "ok")).status.is_ok());
  ffs.fail_writes(true, "/commitlog/");  // in the zeros: an I/O error, not a full disk
  auto r = append_wait(*store, make_record("t", 0, "lost"));
  CHECK(r.status.code() == Code::io_error);
  CHECK(!store->health().is_ok());
  CHECK(store->queue_info("t", 0).max_offset == 7);
  ffs.fail_writes(false);
  CHECK(!store->close().is_ok());
  store.reset();
  store = open_store(o);
  CHECK(store->queue_info("t", 0).max_offset == 7);
  auto rr = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(rr);
  auto ms = messages(*rr);
  REQUIRE(ms.size() == 7);
  CHECK(ms.back().body == "ok");
  auto next = append_wait(*store, make_record("t", 0, "after"));
  REQUIRE(next.status.is_ok());
  CHECK(next.appended[0].offset == 7);
}

TEST_CASE("a tail write that fails on another thread fails the sync waiting for it", "[storage][prealloc]") {
  FaultFileSystem ffs;
  auto log = open_log(ffs);
  CommitLog& l = *log;
  const char* seg = "/log/00000000000000000000";
  REQUIRE(l.append(std::string(20000, 'a'), 1).status().to_string() == "ok");
  REQUIRE(eventually([&] { return l.zeroed_bytes() >= (32u << 10); }));
  REQUIRE(l.append(std::string(24000, 'a'), 1).status().to_string() == "ok");  // past the gap
  REQUIRE(eventually([&] { return ffs.content(seg).size() >= 44000 + (32u << 10); }));
  uint64_t last = 0;  // the zeroer idle: the only writes below are the test's
  REQUIRE(eventually([&] {
    uint64_t now = l.zeroed_bytes();
    bool same = now == last;
    last = now;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return same;
  }));
  uint64_t writes0 = ffs.write_count("/log/");
  REQUIRE(l.append_deferred("deferred", 2).status().to_string() == "ok");
  REQUIRE(ffs.write_count("/log/") == writes0);  // in the zeros: kept for the round
  // Deferred bytes; then a large batch writes them first, and that write fails while a
  // sync (a round) waits for it.
  ffs.hold_writes(true, "/log/");
  std::thread big([&] { (void)l.append_deferred(std::string(20000, 'b'), 3); });
  REQUIRE(eventually([&] { return ffs.held_writes() >= 1; }));
  Status synced;
  std::thread round([&] { synced = l.sync_active(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // it waits for the tail write
  ffs.fail_writes(true, "/log/");
  ffs.hold_writes(false);
  big.join();
  round.join();
  CHECK(!synced.is_ok());  // the deferred bytes are not on the disk: nothing may be acked
  CHECK(!l.health().is_ok());
  ffs.fail_writes(false);
}

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <thread>

#include "storage/fault_fs.h"
#include "storage/file_system.h"
#include "storage/message_store.h"
#include "storage/store_test_util.h"

using namespace mq;
using namespace mq::storage;
using namespace mq::storage::test;

namespace {

StoreOptions small_options(const fs::path& dir, FlushMode mode = FlushMode::sync) {
  StoreOptions o;
  o.dir = dir;
  o.flush = mode;
  o.flush_interval = Millis(20);
  o.segment_size = 4096;
  return o;
}

}  // namespace

TEST_CASE("a store round-trips many records across several small segments", "[storage]") {
  TempDir dir;
  auto store = open_store(small_options(dir.path()));
  for (int i = 0; i < 300; ++i) {
    auto r = append_wait(*store, make_record("t", i % 3, "body-" + std::to_string(i)));
    REQUIRE(r.status.is_ok());
    REQUIRE(r.appended.size() == 1);
    CHECK(r.appended[0].queue == uint32_t(i % 3));
    CHECK(r.appended[0].offset == uint64_t(i / 3));
  }
  CHECK(store->log_end() > 4 * 4096);
  CHECK(store->durable_end() == store->log_end());
  for (uint32_t q = 0; q < 3; ++q) {
    auto info = store->queue_info("t", q);
    CHECK(info.min_offset == 0);
    CHECK(info.max_offset == 100);
    CHECK(info.newest_store_ms > 0);
    uint64_t off = 0;
    int seen = 0;
    while (off < 100) {
      auto r = store->read("t", q, off, 7, 1 << 20);
      REQUIRE(r);
      auto ms = messages(*r);
      REQUIRE(ms.size() == r->count);
      REQUIRE(!ms.empty());
      for (auto& m : ms) {
        CHECK(m.offset == off);
        CHECK(m.queue == q);
        CHECK(m.body == "body-" + std::to_string(off * 3 + q));
        ++off;
        ++seen;
      }
      CHECK(r->next_offset == off);
    }
    CHECK(seen == 100);
  }
  auto qs = store->queues();
  REQUIRE(qs.size() == 3);
  CHECK(qs[0] == std::make_pair(std::string("t"), 0u));
  REQUIRE(store->close().is_ok());
}

TEST_CASE("a multi-record batch gets consecutive offsets across queues", "[storage]") {
  TempDir dir;
  auto store = open_store(small_options(dir.path()));
  std::string batch = make_record("a", 0, "x") + make_record("b", 1, "y") + make_record("a", 0, "z");
  auto r = append_wait(*store, batch);
  REQUIRE(r.status.is_ok());
  REQUIRE(r.appended.size() == 3);
  CHECK(r.appended[0].offset == 0);
  CHECK(r.appended[1].offset == 0);
  CHECK(r.appended[2].offset == 1);
  auto rr = store->read("a", 0, 0, 10, 1 << 20);
  REQUIRE(rr);
  auto ms = messages(*rr);
  REQUIRE(ms.size() == 2);
  CHECK(ms[1].body == "z");
  SECTION("a batch with a bad record is refused whole") {
    std::string bad = make_record("a", 0, "ok") + "garbage-bytes-that-are-not-a-record";
    auto b = append_wait(*store, bad);
    CHECK(b.status.code() == Code::invalid_argument);
    CHECK(store->queue_info("a", 0).max_offset == 2);
    auto dots = append_wait(*store, make_record("..", 0, "x"));
    CHECK(dots.status.code() == Code::invalid_argument);
  }
  SECTION("a damaged record is refused, and a checked batch's lengths are checked again") {
    std::string flipped = make_record("a", 0, "ok");
    flipped.back() ^= 1;
    auto f = append_wait(*store, flipped);
    CHECK(f.status.code() == Code::invalid_argument);
    CHECK(f.status.message().find(kChecksumMismatch) != std::string::npos);
    // checked: the caller decoded every record (so no second checksum), but a batch
    // that is not whole records is still refused whole.
    std::string cut = make_record("a", 0, "ok") + make_record("a", 0, "cut");
    cut.pop_back();
    CHECK(append_wait(*store, cut, /*checked=*/true).status.code() == Code::invalid_argument);
    CHECK(append_wait(*store, make_record("..", 0, "x"), true).status.code() == Code::invalid_argument);
    CHECK(store->queue_info("a", 0).max_offset == 2);
    CHECK(append_wait(*store, make_record("a", 0, "w"), true).status.is_ok());
    CHECK(store->queue_info("a", 0).max_offset == 3);
  }
}

TEST_CASE("reads honour max_msgs, max_bytes, offsets out of range and tag filters", "[storage]") {
  TempDir dir;
  auto store = open_store(small_options(dir.path(), FlushMode::async));
  for (int i = 0; i < 40; ++i)
    REQUIRE(append_wait(*store, make_record("t", 0, std::string(100, 'a' + i % 26), i % 2 ? "odd" : "even"))
                .status.is_ok());
  auto r = store->read("t", 0, 5, 3, 1 << 20);
  REQUIRE(r);
  CHECK(r->count == 3);
  CHECK(r->next_offset == 8);
  CHECK(r->max_offset == 40);
  // About max_bytes, but always one record.
  auto one = store->read("t", 0, 0, 100, 10);
  REQUIRE(one);
  CHECK(one->count == 1);
  auto few = store->read("t", 0, 0, 100, 500);
  REQUIRE(few);
  CHECK(few->count == 2);  // records are 100 + 72 + topic/key/tag bytes
  auto past = store->read("t", 0, 40, 10, 1 << 20);
  REQUIRE(past);
  CHECK(past->count == 0);
  CHECK(past->next_offset == 40);
  auto none = store->read("nope", 0, 0, 10, 1 << 20);
  REQUIRE(none);
  CHECK(none->count == 0);
  uint32_t odd = tag_hash("odd");
  auto f = store->read("t", 0, 0, 5, 1 << 20, std::span<const uint32_t>(&odd, 1));
  REQUIRE(f);
  auto ms = messages(*f);
  REQUIRE(ms.size() == 5);
  for (auto& m : ms) CHECK(m.tag == "odd");
  CHECK(ms[0].offset == 1);
  CHECK(f->next_offset == 10);
}

TEST_CASE("offset_for_time finds the first offset stored at or after a time", "[storage]") {
  TempDir dir;
  auto store = open_store(small_options(dir.path(), FlushMode::async));
  std::vector<int64_t> times;
  for (int i = 0; i < 30; ++i) {
    REQUIRE(append_wait(*store, make_record("t", 0, "x")).status.is_ok());
    if (i % 10 == 9) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  auto all = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(all);
  auto ms = messages(*all);
  REQUIRE(ms.size() == 30);
  for (size_t i = 1; i < ms.size(); ++i) CHECK(ms[i].store_ms >= ms[i - 1].store_ms);
  for (size_t i = 0; i < ms.size(); ++i) {
    auto o = store->offset_for_time("t", 0, ms[i].store_ms);
    REQUIRE(o);
    CHECK(ms[*o].store_ms == ms[i].store_ms);
    CHECK((*o == 0 || ms[*o - 1].store_ms < ms[i].store_ms));
  }
  CHECK(*store->offset_for_time("t", 0, 0) == 0);
  CHECK(*store->offset_for_time("t", 0, ms.back().store_ms + 1) == 30);
}

TEST_CASE("a store reopened after a clean close starts fast with everything in place", "[storage]") {
  TempDir dir;
  auto o = small_options(dir.path());
  uint64_t end;
  {
    auto store = open_store(o);
    for (int i = 0; i < 100; ++i)
      REQUIRE(append_wait(*store, make_record("t" + std::to_string(i % 2), 0, std::to_string(i))).status.is_ok());
    end = store->log_end();
    REQUIRE(store->close().is_ok());
    REQUIRE(store->close().is_ok());  // idempotent
    CHECK(append_wait(*store, make_record("t", 0, "late")).status.code() == Code::unavailable);
  }
  RecoveryReport rep;
  auto store = open_store(o, &rep);
  CHECK(rep.clean);
  CHECK(rep.records_scanned == 0);
  CHECK(rep.log_end == end);
  CHECK(store->queue_info("t0", 0).max_offset == 50);
  CHECK(store->queue_info("t1", 0).max_offset == 50);
  auto r = append_wait(*store, make_record("t1", 0, "more"));
  REQUIRE(r.status.is_ok());
  CHECK(r.appended[0].offset == 50);
  auto rr = store->read("t1", 0, 49, 10, 1 << 20);
  REQUIRE(rr);
  auto ms = messages(*rr);
  REQUIRE(ms.size() == 2);
  CHECK(ms[0].body == "99");
  CHECK(ms[1].body == "more");
  // A store that was not closed is scanned from its last checkpoint.
  store.reset();
}

TEST_CASE("read_log returns whole records up to the visible end", "[storage]") {
  TempDir dir;
  auto store = open_store(small_options(dir.path()));
  for (int i = 0; i < 20; ++i) REQUIRE(append_wait(*store, make_record("t", 0, std::string(50, 'x'))).status.is_ok());
  std::string all;
  uint64_t pos = store->log_start();
  while (pos < store->log_end()) {
    auto chunk = store->read_log(pos, 300);
    REQUIRE(chunk);
    REQUIRE(!chunk->empty());
    RecordView v;
    REQUIRE(decode_record(*chunk, v) == DecodeResult::ok);
    all += *chunk;
    pos += chunk->size();
  }
  CHECK(pos == store->log_end());
  auto empty = store->read_log(pos, 300);
  REQUIRE(empty);
  CHECK(empty->empty());
  auto tiny = store->read_log(0, 1);  // one record even when larger than max
  REQUIRE(tiny);
  CHECK(tiny->size() == make_record("t", 0, std::string(50, 'x')).size());
}

TEST_CASE("retention deletes old segments and moves queue min offsets", "[storage]") {
  TempDir dir;
  auto o = small_options(dir.path(), FlushMode::async);
  o.retention = Millis(1000);
  auto store = open_store(o);
  for (int i = 0; i < 100; ++i) REQUIRE(append_wait(*store, make_record("t", 0, std::string(200, 'x'))).status.is_ok());
  uint64_t start0 = store->log_start();
  store->enforce_retention(0);  // nothing is old yet
  CHECK(store->log_start() == start0);
  store->enforce_retention(wall_ms() + 10'000);
  CHECK(store->log_start() > start0);
  auto info = store->queue_info("t", 0);
  CHECK(info.min_offset > 0);
  CHECK(info.max_offset == 100);
  auto r = store->read("t", 0, 0, 1000, 1 << 20);
  REQUIRE(r);
  auto ms = messages(*r);
  REQUIRE(!ms.empty());
  CHECK(ms.front().offset == info.min_offset);
  CHECK(ms.back().offset == 99);
  // Still consistent after a reopen.
  REQUIRE(store->close().is_ok());
  store = open_store(o);
  CHECK(store->queue_info("t", 0).min_offset == info.min_offset);
  CHECK(store->queue_info("t", 0).max_offset == 100);
}

TEST_CASE("a full disk fails appends, keeps stored data, and recovers when space returns", "[storage]") {
  FaultFileSystem ffs;
  auto o = small_options("/data");
  o.fs = &ffs;
  auto store = open_store(o);
  for (int i = 0; i < 10; ++i) REQUIRE(append_wait(*store, make_record("t", 0, "before")).status.is_ok());
  uint64_t end = store->log_end();
  ffs.set_write_budget(150);  // enough for the index entry and part of a record
  auto r = append_wait(*store, make_record("t", 0, std::string(300, 'z')));
  CHECK(r.status.code() == Code::disk_full);
  CHECK(store->log_end() == end);
  CHECK(store->health().is_ok());
  CHECK(ffs.content("/data/commitlog/00000000000000000000").size() == end);  // no stale bytes
  auto rr = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(rr);
  CHECK(rr->count == 10);
  CHECK(store->queue_info("t", 0).max_offset == 10);
  ffs.set_write_budget(std::nullopt);
  r = append_wait(*store, make_record("t", 0, "after"));
  REQUIRE(r.status.is_ok());
  CHECK(r.appended[0].offset == 10);  // the failed append consumed no offset
  REQUIRE(store->close().is_ok());
  ffs.crash();
  ffs.restart();
  store = open_store(o);
  auto all = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(all);
  auto ms = messages(*all);
  REQUIRE(ms.size() == 11);
  CHECK(ms.back().body == "after");
}

TEST_CASE("short writes are completed and stay invisible to readers", "[storage]") {
  FaultFileSystem ffs;
  auto o = small_options("/data");
  o.fs = &ffs;
  auto store = open_store(o);
  ffs.set_short_writes(true);
  for (int i = 0; i < 20; ++i) REQUIRE(append_wait(*store, make_record("t", 0, std::string(90, 'q'))).status.is_ok());
  ffs.set_short_writes(false);
  auto rr = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(rr);
  CHECK(rr->count == 20);
}

TEST_CASE("a failed fdatasync poisons the store", "[storage]") {
  FaultFileSystem ffs;
  auto o = small_options("/data");
  o.fs = &ffs;
  auto store = open_store(o);
  REQUIRE(append_wait(*store, make_record("t", 0, "ok")).status.is_ok());
  // A segment file's sync ("commitlog/"), not the directory's: the store's
  // background work syncs the commitlog directory too and could take the one fault.
  ffs.fail_sync(FaultFileSystem::SyncFault::once, "commitlog/");
  auto r = append_wait(*store, make_record("t", 0, "lost"));
  CHECK(r.status.code() == Code::io_error);
  CHECK(!store->health().is_ok());
  // The sync would succeed now, but the store never assumes the data is safe.
  auto again = append_wait(*store, make_record("t", 0, "later"));
  CHECK(!again.status.is_ok());
  CHECK(store->queue_info("t", 0).max_offset == 1);
  CHECK(!store->close().is_ok());
  store.reset();
  // What the failed sync covered was never confirmed on disk (the kernel may have dropped
  // it and marked the pages clean): a restart cuts it instead of serving it.
  CHECK(ffs.exists("/data/unconfirmed"));
  store = open_store(o);
  CHECK(store->health().is_ok());
  CHECK(store->queue_info("t", 0).max_offset == 1);
  auto rd = store->read("t", 0, 0, 10, 1 << 20);
  REQUIRE(rd);
  CHECK(rd->count == 1);
  CHECK_FALSE(ffs.exists("/data/unconfirmed"));
  // and the log goes on from there
  REQUIRE(append_wait(*store, make_record("t", 0, "after")).status.is_ok());
  CHECK(store->queue_info("t", 0).max_offset == 2);
}

TEST_CASE("with sync flush a group's index entries take one write per queue, by its round", "[storage]") {
  FaultFileSystem ffs;
  ffs.set_sync_delay(std::chrono::microseconds(5000));  // appenders gather behind each fdatasync
  auto o = small_options("/data");
  o.fs = &ffs;
  o.segment_size = 1 << 20;
  o.preallocate = 0;
  auto store = open_store(o);
  REQUIRE(append_wait(*store, make_record("t", 0, "first")).status.is_ok());  // the index file exists
  uint64_t writes0 = ffs.write_count("/index/"), syncs0 = store->stats().log_syncs;
  constexpr int kAppenders = 16;
  for (auto& st : append_concurrently(*store, kAppenders)) REQUIRE(st.is_ok());
  uint64_t writes = ffs.write_count("/index/") - writes0, rounds = store->stats().log_syncs - syncs0;
  CHECK(writes <= rounds);  // per append it would be one each
  CHECK(writes < kAppenders);
  auto rr = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(rr);
  CHECK(messages(*rr).size() == kAppenders + 1);
  // Acked means in the log: after a power loss the entries come back from it.
  ffs.crash();
  ffs.restart();
  store.reset();
  store = open_store(o);
  auto after = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(after);
  CHECK(messages(*after).size() == kAppenders + 1);
}

TEST_CASE("an index write that fails in the round fails its group and poisons the store", "[storage]") {
  FaultFileSystem ffs;
  auto o = small_options("/data");
  o.fs = &ffs;
  auto store = open_store(o);
  for (int i = 0; i < 5; ++i) REQUIRE(append_wait(*store, make_record("t", 0, "ok")).status.is_ok());
  ffs.fail_writes(true, "/index/");  // inside reserved space: an I/O error, not a full disk
  auto r = append_wait(*store, make_record("t", 0, "lost"));
  CHECK(r.status.code() == Code::io_error);
  CHECK(!store->health().is_ok());
  CHECK(store->queue_info("t", 0).max_offset == 5);  // never visible
  ffs.fail_writes(false);
  CHECK(!append_wait(*store, make_record("t", 0, "later")).status.is_ok());
  CHECK(!store->close().is_ok());
  store.reset();
  store = open_store(o);
  CHECK(store->health().is_ok());
  CHECK(store->queue_info("t", 0).max_offset == 5);
  auto rd = store->read("t", 0, 0, 10, 1 << 20);
  REQUIRE(rd);
  for (auto& m : messages(*rd)) CHECK(m.body == "ok");
  auto next = append_wait(*store, make_record("t", 0, "after"));
  REQUIRE(next.status.is_ok());
  CHECK(next.appended[0].offset == 5);
}

TEST_CASE("an append whose index space cannot be reserved is refused and leaves nothing behind", "[storage]") {
  FaultFileSystem ffs;
  auto o = small_options("/data");
  o.fs = &ffs;
  auto store = open_store(o);
  REQUIRE(append_wait(*store, make_record("a", 0, "ok")).status.is_ok());
  uint64_t end = store->log_end();
  ffs.set_file_limit(4096, "/index/b/");  // the first reservation of b/0 goes past it
  auto r = append_wait(*store, make_record("b", 0, "refused"));
  CHECK(r.status.code() == Code::disk_full);
  CHECK(store->log_end() == end);
  CHECK(store->health().is_ok());
  CHECK(store->queue_info("b", 0).max_offset == 0);
  ffs.set_file_limit(std::nullopt);
  auto ok = append_wait(*store, make_record("b", 0, "stored"));
  REQUIRE(ok.status.is_ok());
  CHECK(ok.appended[0].offset == 0);
  auto rd = store->read("b", 0, 0, 10, 1 << 20);
  REQUIRE(rd);
  REQUIRE(messages(*rd).size() == 1);
  CHECK(messages(*rd)[0].body == "stored");
}

TEST_CASE("where index space cannot be reserved, each append writes its entries itself", "[storage]") {
  FaultFileSystem ffs;
  ffs.set_reserve(false);
  auto o = small_options("/data");
  o.fs = &ffs;
  auto store = open_store(o);
  uint64_t writes0 = ffs.write_count("/index/");
  for (int i = 0; i < 20; ++i)
    REQUIRE(append_wait(*store, make_record("t", 0, "m" + std::to_string(i))).status.is_ok());
  CHECK(ffs.write_count("/index/") - writes0 == 20);
  ffs.crash();
  ffs.restart();
  store.reset();
  store = open_store(o);
  auto rd = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(rd);
  auto ms = messages(*rd);
  REQUIRE(ms.size() == 20);
  CHECK(ms.back().body == "m19");
}

TEST_CASE("out of file descriptors at a segment roll fails the append, not the log", "[storage]") {
  FaultFileSystem ffs;
  auto o = small_options("/data");
  o.fs = &ffs;
  auto store = open_store(o);
  const std::string body(1000, 'r');
  REQUIRE(append_wait(*store, make_record("t", 0, body)).status.is_ok());
  auto segments = [&] {
    size_t n = 0;
    for (auto& f : ffs.files()) n += f.find("/data/commitlog/") == 0;
    return n;
  };
  size_t before = segments();
  // The new segment took the last descriptor and the directory could not be opened to sync
  // it: that descriptor is given back and the directory synced (the log was poisoned)
  ffs.fail_dir_open(1, "commitlog");
  int ok = 0;
  for (int i = 0; i < 8; ++i) ok += append_wait(*store, make_record("t", 0, body)).status.is_ok();
  CHECK(ok == 8);
  CHECK(store->health().is_ok());
  CHECK(segments() > before);
  // Still out of descriptors after that: the append that rolls fails and is retried later
  ffs.fail_dir_open(2, "commitlog");
  bool refused = false;
  for (int i = 0; i < 8 && !refused; ++i) {
    auto r = append_wait(*store, make_record("t", 0, body));
    if (!r.status.is_ok()) {
      refused = true;
      CHECK(r.status.code() == Code::unavailable);
    }
  }
  CHECK(refused);
  CHECK(store->health().is_ok());
  uint64_t stored = store->queue_info("t", 0).max_offset;
  REQUIRE(append_wait(*store, make_record("t", 0, body)).status.is_ok());
  CHECK(store->queue_info("t", 0).max_offset == stored + 1);
  auto rd = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(rd);
  CHECK(rd->count == stored + 1);
}

TEST_CASE("the visible listener fires when records become visible", "[storage]") {
  TempDir dir;
  auto store = open_store(small_options(dir.path()));
  std::atomic<int> calls{0};
  store->set_visible_listener([&] { ++calls; });
  REQUIRE(append_wait(*store, make_record("t", 0, "x")).status.is_ok());
  CHECK(calls.load() >= 1);
  CHECK(store->queue_info("t", 0).max_offset == 1);
}

TEST_CASE("a read serves the records before a damaged one; the next read names it", "[storage]") {
  TempDir dir;
  auto o = small_options(dir.path());
  o.segment_size = 1 << 20;
  size_t size = make_record("t", 0, "b0").size();
  {
    auto store = open_store(o);
    for (int i = 0; i < 10; ++i) REQUIRE(append_wait(*store, make_record("t", 0, "b" + std::to_string(i))).status.is_ok());
    REQUIRE(store->close().is_ok());
  }
  // One byte of record 5's body flipped while the store was closed (a clean start does not scan).
  fs::path seg;
  for (auto& e : fs::directory_iterator(dir.path() / "commitlog")) seg = e.path();
  {
    std::fstream f(seg, std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f);
    f.seekp(static_cast<std::streamoff>(5 * size + size - 1));
    f.put('X');
  }
  auto store = open_store(o);
  auto r = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(r);
  CHECK(r->count == 5);
  CHECK(r->next_offset == 5);
  CHECK(messages(*r).back().body == "b4");
  auto at = store->read("t", 0, 5, 100, 1 << 20);
  REQUIRE_FALSE(at);
  CHECK(at.status().message().find("offset 5") != std::string::npos);
  auto after = store->read("t", 0, 6, 100, 1 << 20);  // past it, the queue reads on
  REQUIRE(after);
  CHECK(after->count == 4);
}

TEST_CASE("an index entry damaged in place is rebuilt from the log at the next start", "[storage]") {
  TempDir dir;
  auto o = small_options(dir.path());
  o.segment_size = 1 << 20;
  {
    auto store = open_store(o);
    for (int i = 0; i < 10; ++i) REQUIRE(append_wait(*store, make_record("t", 0, "b" + std::to_string(i))).status.is_ok());
    REQUIRE(append_wait(*store, make_record("u", 0, "other")).status.is_ok());
    REQUIRE(store->close().is_ok());
  }
  // While stopped, same size: entry 6 overwritten by entry 5, entry 8 zeroed. A clean
  // start trusts the indexes (their entry counts still match the checkpoint).
  fs::path idx = dir.path() / "index" / "t" / "0";
  {
    std::fstream f(idx, std::ios::in | std::ios::out | std::ios::binary);
    REQUIRE(f);
    char e[24];
    f.seekg(5 * 24);
    f.read(e, 24);
    f.seekp(6 * 24);
    f.write(e, 24);
    char zeros[24] = {};
    f.seekp(8 * 24);
    f.write(zeros, 24);
  }
  {
    auto store = open_store(o);
    auto r = store->read("t", 0, 6, 100, 1 << 20);
    REQUIRE_FALSE(r);
    CHECK(r.status().message().find("the queue index is damaged, the log is not") != std::string::npos);
    auto z = store->read("t", 0, 8, 100, 1 << 20);
    REQUIRE_FALSE(z);
    CHECK(z.status().message().find("the queue index is damaged") != std::string::npos);
    REQUIRE(store->close().is_ok());
  }
  auto store = open_store(o);
  auto r = store->read("t", 0, 0, 100, 1 << 20);
  REQUIRE(r);
  REQUIRE(r->count == 10);
  auto ms = messages(*r);
  for (int i = 0; i < 10; ++i) CHECK(ms[static_cast<size_t>(i)].body == "b" + std::to_string(i));
  CHECK(store->queue_info("u", 0).max_offset == 1);
  REQUIRE(store->close().is_ok());
  // and the start after that is clean again
  RecoveryReport rep;
  auto again = MessageStore::open(o, &rep);
  REQUIRE(again);
  CHECK(rep.clean);
}

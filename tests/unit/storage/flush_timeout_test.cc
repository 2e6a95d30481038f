// Flush sync with a flush timeout: an fdatasync slower than the timeout
// answers the append "timeout" with its offsets, keeps the record invisible
// until a sync covers it, and never makes it more durable than it is.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <mutex>
#include <thread>

#include "storage/fault_fs.h"
#include "storage/message_store.h"
#include "storage/store_test_util.h"

using namespace mq;
using namespace mq::storage;
using namespace mq::storage::test;
using Clock = std::chrono::steady_clock;

namespace {

StoreOptions timeout_options(FaultFileSystem& ffs, Millis timeout) {
  StoreOptions o;
  o.dir = "/data";
  o.fs = &ffs;
  o.flush = FlushMode::sync;
  o.flush_timeout = timeout;
  o.segment_size = 1 << 20;
  // The preallocation thread's fdatasyncs of zeros would be held too: these
  // tests count the flusher's (prealloc_test.cc covers the zeros).
  o.preallocate = 0;
  return o;
}

// Lets held syncs go when a test ends early, before the store closes (declare after the store).
struct ReleaseSyncs {
  FaultFileSystem& ffs;
  ~ReleaseSyncs() { ffs.hold_syncs(false); }
};

// Records every answer of non-blocking appends.
struct Answers {
  std::mutex mu;
  std::vector<AppendOutcome> got;
  MessageStore::AppendCallback callback() {
    return [this](Status st, std::vector<Appended> a) {
      std::lock_guard lk(mu);
      got.push_back({std::move(st), std::move(a)});
    };
  }
  size_t size() {
    std::lock_guard lk(mu);
    return got.size();
  }
};

std::vector<std::string> bodies(MessageStore& s) {
  auto r = s.read("t", 0, 0, 100, 1 << 20);
  REQUIRE(r);
  std::vector<std::string> out;
  for (auto& m : messages(*r)) out.push_back(m.body);
  return out;
}

}  // namespace

TEST_CASE("an append whose fdatasync is late is answered timeout with its offsets, visible once synced",
          "[storage][flush-timeout]") {
  FaultFileSystem ffs;
  auto store = open_store(timeout_options(ffs, Millis(100)));
  ReleaseSyncs release{ffs};
  REQUIRE(append_wait(*store, make_record("t", 0, "a")).status.is_ok());

  ffs.hold_syncs(true, "commitlog");
  auto t0 = Clock::now();
  auto late = append_wait(*store, make_record("t", 0, "b"));
  auto took = Clock::now() - t0;
  CHECK(late.status.code() == Code::timeout);
  REQUIRE(late.appended.size() == 1);
  CHECK(late.appended[0].queue == 0);
  CHECK(late.appended[0].offset == 1);
  CHECK(took >= std::chrono::milliseconds(100));
  CHECK(took < std::chrono::milliseconds(2000));
  CHECK(ffs.held_syncs() == 1);  // the fdatasync is still going on
  CHECK(store->stats().flush_timeouts == 1);

  // Written but not durable: readers do not see it, the next offset is taken.
  CHECK(bodies(*store) == std::vector<std::string>{"a"});
  CHECK(store->queue_info("t", 0).max_offset == 1);
  CHECK(store->durable_end() < store->log_end());

  // Appends behind the slow sync time out too, each answered once, in order.
  Answers more;
  store->append(make_record("t", 0, "c"), more.callback());
  store->append(make_record("t", 0, "d"), more.callback());
  REQUIRE(eventually([&] { return more.size() == 2; }));
  for (size_t i = 0; i < 2; ++i) {
    CHECK(more.got[i].status.code() == Code::timeout);
    REQUIRE(more.got[i].appended.size() == 1);
    CHECK(more.got[i].appended[0].offset == 2 + i);
  }

  // The disk catches up: everything becomes visible and nobody is answered again.
  ffs.hold_syncs(false);
  REQUIRE(eventually([&] { return store->queue_info("t", 0).max_offset == 4; }));
  CHECK(bodies(*store) == std::vector<std::string>{"a", "b", "c", "d"});
  auto next = append_wait(*store, make_record("t", 0, "e"));
  CHECK(next.status.is_ok());
  REQUIRE(next.appended.size() == 1);
  CHECK(next.appended[0].offset == 4);
  CHECK(more.size() == 2);
  CHECK(store->stats().flush_timeouts == 3);
  REQUIRE(store->close().is_ok());
}

TEST_CASE("a record answered flush timeout is lost by a crash before its fdatasync completes",
          "[storage][flush-timeout]") {
  FaultFileSystem ffs;
  auto o = timeout_options(ffs, Millis(50));
  {
    auto store = open_store(o);
    ReleaseSyncs release{ffs};
    REQUIRE(append_wait(*store, make_record("t", 0, "durable")).status.is_ok());
    ffs.hold_syncs(true, "commitlog");
    auto late = append_wait(*store, make_record("t", 0, "unsynced"));
    CHECK(late.status.code() == Code::timeout);
    CHECK(late.appended.size() == 1);
    ffs.crash();  // power cut while the fdatasync hangs
    ffs.hold_syncs(false);
    REQUIRE(eventually([&] { return !store->health().is_ok(); }));
    CHECK(store->queue_info("t", 0).max_offset == 1);  // never shown
    CHECK(!store->close().is_ok());
  }
  ffs.restart();
  auto store = open_store(o);
  CHECK(bodies(*store) == std::vector<std::string>{"durable"});
  CHECK(store->queue_info("t", 0).max_offset == 1);
}

TEST_CASE("without a flush timeout an append waits for its fdatasync however long it takes",
          "[storage][flush-timeout]") {
  FaultFileSystem ffs;
  auto store = open_store(timeout_options(ffs, Millis(0)));
  ReleaseSyncs release{ffs};
  ffs.hold_syncs(true, "commitlog");
  Answers got;
  store->append(make_record("t", 0, "x"), got.callback());
  REQUIRE(eventually([&] { return ffs.held_syncs() == 1; }));
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  CHECK(got.size() == 0);
  ffs.hold_syncs(false);
  REQUIRE(eventually([&] { return got.size() == 1; }));
  CHECK(got.got[0].status.is_ok());
  CHECK(store->stats().flush_timeouts == 0);
  REQUIRE(store->close().is_ok());
}

TEST_CASE("a flush timeout does not answer appends whose fdatasync is on time",
          "[storage][flush-timeout]") {
  FaultFileSystem ffs;
  auto store = open_store(timeout_options(ffs, Millis(20)));
  for (int i = 0; i < 200; ++i) REQUIRE(append_wait(*store, make_record("t", 0, "on time")).status.is_ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(60));  // past every deadline
  CHECK(store->stats().flush_timeouts == 0);
  CHECK(store->queue_info("t", 0).max_offset == 200);
  REQUIRE(store->close().is_ok());
}

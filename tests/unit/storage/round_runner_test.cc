// Flush sync with a round runner (MessageStore::set_round_runner): the append
// that completes a group hands the group's fdatasync and answers to the
// runner instead of waking the flusher, while fdatasyncs are fast and
// answering takes less than them; otherwise the flusher runs every round.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <set>
#include <thread>

#include "storage/fault_fs.h"
#include "storage/message_store.h"
#include "storage/store_test_util.h"

using namespace mq;
using namespace mq::storage;
using namespace mq::storage::test;
using std::chrono::microseconds;

namespace {

StoreOptions runner_options(FaultFileSystem& ffs) {
  StoreOptions o;
  o.dir = "/data";
  o.fs = &ffs;
  o.flush = FlushMode::sync;
  o.segment_size = 1 << 20;
  o.preallocate = 0;  // only the group commits' fdatasyncs
  return o;
}

// Appends one record and waits for its answer; `answer` runs in the callback
// first (a slow answer). Returns the answer's status and thread.
std::pair<Status, std::thread::id> append_on(MessageStore& s, const std::string& body,
                                             std::function<void()> answer = nullptr) {
  std::promise<std::pair<Status, std::thread::id>> p;
  auto f = p.get_future();
  s.append(make_record("t", 0, body), [&](Status st, std::vector<Appended>) {
    if (answer) answer();
    p.set_value({std::move(st), std::this_thread::get_id()});
  });
  return f.get();
}

}  // namespace

TEST_CASE("a lone appender's rounds run on the round runner while fdatasyncs are fast", "[storage][round-runner]") {
  TestRunner run;
  FaultFileSystem ffs;
  ffs.set_sync_delay(microseconds(300));
  auto store = open_store(runner_options(ffs));
  store->set_round_runner(run.runner());
  size_t on_runner = 0;
  for (int i = 0; i < 40; ++i) {
    auto [st, who] = append_on(*store, "m" + std::to_string(i));
    REQUIRE(st.is_ok());
    if (who == run.id()) ++on_runner;
    // Answered only once durable and visible.
    REQUIRE(store->durable_end() == store->log_end());
    auto r = store->read("t", 0, static_cast<uint64_t>(i), 1, 1 << 20);
    REQUIRE(r.status().to_string() == "ok");
    REQUIRE(messages(*r).size() == 1);
    CHECK(messages(*r)[0].body == "m" + std::to_string(i));
  }
  // The first round is the flusher's (it measures the fdatasync); a stall
  // over 2 ms on a loaded machine sends one round back to the flusher.
  CHECK(on_runner >= 20);
  CHECK(run.posted() == on_runner);
  REQUIRE(store->close().is_ok());
}

TEST_CASE("slow fdatasyncs keep every round on the flusher thread", "[storage][round-runner]") {
  TestRunner run;
  FaultFileSystem ffs;
  ffs.set_sync_delay(microseconds(3000));  // over the 2 ms limit
  auto store = open_store(runner_options(ffs));
  store->set_round_runner(run.runner());
  for (int i = 0; i < 8; ++i) {
    auto [st, who] = append_on(*store, "m");
    REQUIRE(st.is_ok());
    CHECK(who != run.id());
  }
  CHECK(run.posted() == 0);
}

TEST_CASE("answers slower than the fdatasync keep every round on the flusher thread", "[storage][round-runner]") {
  TestRunner run;
  FaultFileSystem ffs;
  ffs.set_sync_delay(microseconds(300));
  auto store = open_store(runner_options(ffs));
  store->set_round_runner(run.runner());
  for (int i = 0; i < 8; ++i) {
    auto [st, who] = append_on(*store, "m", [] { std::this_thread::sleep_for(std::chrono::milliseconds(2)); });
    REQUIRE(st.is_ok());
    CHECK(who != run.id());
  }
  CHECK(run.posted() == 0);
}

TEST_CASE("concurrent appenders share fdatasyncs when the runner runs the rounds", "[storage][round-runner]") {
  TestRunner run;
  FaultFileSystem ffs;
  ffs.set_sync_delay(microseconds(300));
  auto store = open_store(runner_options(ffs));
  store->set_round_runner(run.runner());
  constexpr int kThreads = 8, kEach = 40;
  std::atomic<int> failed{0};
  std::mutex mu;
  std::set<std::string> acked;
  std::vector<std::thread> ts;
  for (int t = 0; t < kThreads; ++t)
    ts.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        std::string body = "t" + std::to_string(t) + "-" + std::to_string(i);
        if (!append_on(*store, body).first.is_ok()) {
          ++failed;
          continue;
        }
        std::lock_guard lk(mu);
        acked.insert(body);
      }
    });
  for (auto& t : ts) t.join();
  REQUIRE(failed == 0);
  auto st = store->stats();
  CHECK(st.appends == kThreads * kEach);
  CHECK(st.log_syncs * 2 <= st.appends);  // group commit still groups
  CHECK(run.posted() > 0);
  auto r = store->read("t", 0, 0, kThreads * kEach, 64 << 20);
  REQUIRE(r.status().to_string() == "ok");
  std::set<std::string> stored;
  for (auto& m : messages(*r)) stored.insert(m.body);
  CHECK(stored == acked);
}

TEST_CASE("close runs a round the runner never got to, and the round does nothing afterwards", "[storage][round-runner]") {
  TestRunner run;
  FaultFileSystem ffs;
  ffs.set_sync_delay(microseconds(300));
  std::vector<std::function<void()>> kept;
  {
    auto store = open_store(runner_options(ffs));
    store->set_round_runner(run.runner());
    REQUIRE(append_on(*store, "warm-up").first.is_ok());  // the flusher measures a round
    run.pause(true);
    std::promise<Status> answered;
    store->append(make_record("t", 0, "late"), [&](Status st, std::vector<Appended>) { answered.set_value(st); });
    REQUIRE(eventually([&] { return run.posted() == 1; }));
    auto f = answered.get_future();
    CHECK(f.wait_for(std::chrono::milliseconds(50)) == std::future_status::timeout);  // kept, not run
    REQUIRE(store->close().is_ok());
    CHECK(f.get().is_ok());  // answered by close: durable
    kept = run.take();
    REQUIRE(kept.size() == 1);
    kept[0]();  // after close: nothing
  }
  kept[0]();  // after the store is gone: nothing either
  auto store = open_store(runner_options(ffs));
  auto r = store->read("t", 0, 0, 10, 1 << 20);
  REQUIRE(r.status().to_string() == "ok");
  REQUIRE(messages(*r).size() == 2);
  CHECK(messages(*r)[1].body == "late");
}

TEST_CASE("groups that no longer complete under the runner are committed by the flusher", "[storage][round-runner]") {
  TestRunner run;
  FaultFileSystem ffs;
  ffs.set_sync_delay(microseconds(300));
  auto store = open_store(runner_options(ffs));
  store->set_round_runner(run.runner());
  std::atomic<int> late{0};
  // Appenders in lockstep, then one fewer: the rounds expect a group the
  // appenders no longer make, and nobody completes it.
  auto appenders = [&](int n) {
    std::vector<std::thread> ts;
    for (int t = 0; t < n; ++t)
      ts.emplace_back([&] {
        for (int i = 0; i < 30; ++i) {
          std::promise<Status> p;
          store->append(make_record("t", 0, "m"), [&](Status st, std::vector<Appended>) { p.set_value(st); });
          auto f = p.get_future();
          if (f.wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
            ++late;
            f.wait();
          }
          if (!f.get().is_ok()) ++late;
        }
      });
    for (auto& t : ts) t.join();
  };
  appenders(4);
  size_t led = run.posted();
  appenders(3);
  appenders(1);
  CHECK(late == 0);
  CHECK(led > 0);
  CHECK(store->stats().appends == 4 * 30 + 3 * 30 + 30);
  CHECK(store->durable_end() == store->log_end());
}

// Power-loss simulation: concurrent appenders, a crash at a random moment
// (FaultFileSystem drops every byte and directory entry not synced), reopen,
// and check that nothing acknowledged was lost and the log is intact.
#include <catch2/catch.hpp>

#include <atomic>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "storage/fault_fs.h"
#include "storage/message_store.h"
#include "storage/store_test_util.h"

using namespace mq;
using namespace mq::storage;
using namespace mq::storage::test;

namespace {

constexpr uint32_t kQueues = 3;

struct Acked {
  std::mutex mu;
  std::map<std::string, std::pair<uint32_t, uint64_t>> by_body;  // body -> (queue, offset)
  size_t count() {
    std::lock_guard lk(mu);
    return by_body.size();
  }
};

StoreOptions crash_options(FaultFileSystem& ffs, FlushMode mode) {
  StoreOptions o;
  o.dir = "/data";
  o.fs = &ffs;
  o.flush = mode;
  o.flush_interval = Millis(5);
  o.segment_size = 4096;  // many rolls
  return o;
}

// Reads every queue whole and checks: dense offsets from 0, no duplicate
// bodies, every record intact (the store verifies CRCs). Returns body -> (queue, offset).
std::map<std::string, std::pair<uint32_t, uint64_t>> read_all(MessageStore& s) {
  std::map<std::string, std::pair<uint32_t, uint64_t>> out;
  for (uint32_t q = 0; q < kQueues; ++q) {
    auto info = s.queue_info("t", q);
    REQUIRE(info.min_offset == 0);
    uint64_t off = 0;
    while (off < info.max_offset) {
      auto r = s.read("t", q, off, 1000, 1 << 20);
      REQUIRE(r.status().to_string() == "ok");
      auto ms = messages(*r);
      REQUIRE(ms.size() == r->count);
      REQUIRE(!ms.empty());
      for (auto& m : ms) {
        REQUIRE(m.offset == off);
        REQUIRE(m.queue == q);
        REQUIRE(out.emplace(m.body, std::make_pair(q, off)).second);  // no duplicates
        ++off;
      }
    }
  }
  return out;
}

// Runs appenders until `crash_after` appends were acked, then crashes the
// file system. With `wait_flush`, first waits until a flush covered what was
// acked at that point (the async guarantee) and returns that set in `flushed`.
void run_until_crash(FaultFileSystem& ffs, MessageStore& store, Acked& acked, std::mt19937& rng,
                     int round, bool wait_flush, std::set<std::string>& flushed) {
  std::atomic<bool> stop{false}, bad_ack{false};
  std::vector<std::thread> threads;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  auto wait = [&](auto cond) {
    while (!cond() && std::chrono::steady_clock::now() < deadline) std::this_thread::yield();
  };
  size_t base = acked.count();
  size_t crash_after = base + std::uniform_int_distribution<size_t>(0, 120)(rng);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t, seed = rng()] {
      std::mt19937 r(seed);
      for (int n = 0; !stop; ++n) {
        std::string batch, first;
        int records = (r() % 4 == 0) ? 1 + r() % 3 : 1;
        std::vector<std::string> bodies;
        for (int k = 0; k < records; ++k) {
          bodies.push_back(fmt::format("r{}-t{}-n{}-k{}", round, t, n, k));
          batch += make_record("t", r() % kQueues, bodies.back() + std::string(r() % 200, 'p'));
        }
        auto out = append_wait(store, batch);
        if (!out.status.is_ok()) {
          if (stop) break;
          continue;  // e.g. the crash came first
        }
        if (out.appended.size() != bodies.size()) {
          bad_ack = true;  // Catch assertions are not thread-safe: checked below
          continue;
        }
        std::lock_guard lk(acked.mu);
        for (size_t k = 0; k < bodies.size(); ++k)
          acked.by_body[bodies[k]] = {out.appended[k].queue, out.appended[k].offset};
      }
    });
  }
  wait([&] { return acked.count() >= crash_after; });
  if (wait_flush) {
    {
      std::lock_guard lk(acked.mu);
      for (auto& [b, qo] : acked.by_body) flushed.insert(b);
    }
    uint64_t end = store.log_end();
    wait([&] { return store.durable_end() >= end; });
    size_t more = acked.count() + std::uniform_int_distribution<size_t>(0, 30)(rng);
    wait([&] { return acked.count() >= more; });
  }
  ffs.crash();
  stop = true;
  for (auto& th : threads) th.join();
  REQUIRE(std::chrono::steady_clock::now() < deadline);
  REQUIRE(!bad_ack);
}

// Bodies carry random padding: map each stored body back to its prefix.
std::string key_of(const std::string& body) { return body.substr(0, body.find('p')); }

}  // namespace

TEST_CASE("power loss under sync flush never loses an acknowledged append", "[storage]") {
  // Also with preallocated zeros past the end (small enough to meet rolls
  // and crashes in every state: being written, synced, cut at a roll).
  // And with a round runner (the broker's io threads run complete groups'
  // rounds), on a disk slow enough for it to be used.
  enum Variant { plain, prealloc_zeros, runner };
  auto variant = GENERATE(plain, prealloc_zeros, runner);
  bool prealloc = variant == prealloc_zeros;
  CAPTURE(variant);
  uint64_t zeroed = 0;
  TestRunner run;  // outlives the stores
  for (uint32_t seed = 0; seed < (variant == plain ? 200u : 120u); ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed);
    FaultFileSystem ffs;
    auto o = crash_options(ffs, FlushMode::sync);
    if (prealloc) {
      o.segment_size = 16u << 10;
      o.preallocate = 8u << 10;
    }
    if (variant == runner) ffs.set_sync_delay(std::chrono::microseconds(200));
    Acked acked;
    std::set<std::string> unused;
    for (int round = 0; round < 2; ++round) {
      RecoveryReport rep;
      auto opened = MessageStore::open(o, &rep);
      REQUIRE(opened.status().to_string() == "ok");
      auto store = std::move(*opened);
      if (variant == runner) store->set_round_runner(run.runner());
      auto stored = read_all(*store);
      std::map<std::string, std::pair<uint32_t, uint64_t>> by_key;
      for (auto& [body, qo] : stored) by_key[key_of(body)] = qo;
      {
        std::lock_guard lk(acked.mu);
        for (auto& [body, qo] : acked.by_body) {
          auto it = by_key.find(key_of(body));
          INFO("acked append lost: " << body);
          REQUIRE(it != by_key.end());
          CHECK(it->second == qo);  // at the offset it was acked with
        }
      }
      run_until_crash(ffs, *store, acked, rng, round, false, unused);
      zeroed += store->stats().preallocated_bytes;
      store.reset();
      ffs.restart();
    }
    // Final check after the last crash.
    auto store = MessageStore::open(o);
    REQUIRE(store.status().to_string() == "ok");
    // Only the last segment may hold zeros past its records.
    std::vector<std::pair<uint64_t, std::string>> segs;
    for (auto& f : ffs.files())
      if (f.rfind("/data/commitlog/", 0) == 0) segs.push_back({std::stoull(f.substr(16)), f});
    for (size_t i = 0; i + 1 < segs.size(); ++i) {
      INFO(segs[i].second);
      CHECK(ffs.content(segs[i].second).size() == segs[i + 1].first - segs[i].first);
    }
    auto stored = read_all(**store);
    std::set<std::string> keys;
    for (auto& [body, qo] : stored) keys.insert(key_of(body));
    for (auto& [body, qo] : acked.by_body) REQUIRE(keys.count(key_of(body)) == 1);
  }
  if (prealloc) CHECK(zeroed > 0);  // the zeros were really there
  if (variant == runner) CHECK(run.posted() > 0);  // rounds really ran there
}

TEST_CASE("power loss under async flush loses nothing older than the last completed flush", "[storage]") {
  for (uint32_t seed = 0; seed < 60; ++seed) {
    CAPTURE(seed);
    std::mt19937 rng(seed + 1000);
    FaultFileSystem ffs;
    auto o = crash_options(ffs, FlushMode::async);
    Acked acked;
    std::set<std::string> flushed;
    {
      auto opened = MessageStore::open(o);
      REQUIRE(opened.status().to_string() == "ok");
      run_until_crash(ffs, **opened, acked, rng, 0, true, flushed);
    }
    ffs.restart();
    RecoveryReport rep;
    auto store = MessageStore::open(o, &rep);
    REQUIRE(store.status().to_string() == "ok");
    auto stored = read_all(**store);  // dense, intact, no duplicates
    std::set<std::string> keys;
    for (auto& [body, qo] : stored) keys.insert(key_of(body));
    for (auto& body : flushed) {
      INFO("flushed append lost: " << body);
      REQUIRE(keys.count(key_of(body)) == 1);
    }
    // Whatever survived sits at the offset it was acked with.
    for (auto& [body, qo] : stored) {
      auto it = acked.by_body.find(key_of(body));
      if (it != acked.by_body.end()) CHECK(it->second == qo);
    }
  }
}

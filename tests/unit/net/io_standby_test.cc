#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <thread>

#include "net/io_standby.h"

using namespace mq::net;
using namespace std::chrono_literals;

namespace {

// One io thread, like the broker on 2 cores.
struct OneThread {
  asio::io_context io;
  asio::executor_work_guard<asio::io_context::executor_type> work = asio::make_work_guard(io);
  std::thread th{[this] { io.run(); }};
  ~OneThread() {
    work.reset();
    io.stop();
    th.join();
  }
};

// Posts a function that blocks until another handler runs (or 5 s), then that
// handler: the standby must run it while the io thread is blocked.
void check_rescued(OneThread& t, IoStandby& standby) {
  // Right after a rescue the standby may still be in its last look (1 ms) at
  // the io_context and take the next post itself (the io thread is free then):
  // wait until it let go, so that the post below runs on the io thread.
  for (int i = 0; i < 100; ++i) {
    std::promise<std::thread::id> where;
    standby.post([&] { where.set_value(std::this_thread::get_id()); });
    if (where.get_future().get() == t.th.get_id()) break;
    std::this_thread::sleep_for(10ms);
  }
  std::this_thread::sleep_for(5ms);
  uint64_t rescues = standby.rescues();
  std::promise<void> released;
  auto release = released.get_future().share();
  // What the blocked function touches after it is released is its own (held by the
  // closure): the test may return while it is still on its way out.
  auto timed_out = std::make_shared<std::atomic<bool>>(false);
  auto finished = std::make_shared<std::promise<void>>();
  auto finished_f = finished->get_future();
  std::promise<std::thread::id> blocked_on;
  standby.post([&blocked_on, release, timed_out, finished] {
    blocked_on.set_value(std::this_thread::get_id());
    // A stalled fdatasync: over until the other handler runs (or 5 s).
    if (release.wait_for(5s) != std::future_status::ready) *timed_out = true;
    finished->set_value();
  });
  REQUIRE(blocked_on.get_future().get() == t.th.get_id());
  auto t0 = std::chrono::steady_clock::now();
  std::promise<std::thread::id> served;
  asio::post(t.io, [&] {
    served.set_value(std::this_thread::get_id());
    released.set_value();
  });
  auto f = served.get_future();
  REQUIRE(f.wait_for(4s) == std::future_status::ready);
  CHECK(f.get() != t.th.get_id());  // the io thread is still blocked: the standby ran it
  CHECK(std::chrono::steady_clock::now() - t0 < 1s);
  CHECK(standby.rescues() == rescues + 1);
  release.wait();
  REQUIRE(finished_f.wait_for(4s) == std::future_status::ready);
  CHECK(!*timed_out);
}

}  // namespace

TEST_CASE("a posted function that blocks leaves the other handlers served", "[net]") {
  OneThread t;
  IoStandby standby(t.io);
  check_rescued(t, standby);
  check_rescued(t, standby);  // and again
}

TEST_CASE("the standby steps in after it slept through an idle second too", "[net]") {
  OneThread t;
  IoStandby standby(t.io);
  std::promise<void> quick;
  standby.post([&] { quick.set_value(); });
  quick.get_future().wait();
  std::this_thread::sleep_for(1200ms);  // no posts for over a second: it sleeps
  check_rescued(t, standby);
}

TEST_CASE("quick posted functions run in order on the io thread without the standby", "[net]") {
  OneThread t;
  IoStandby standby(t.io, 50ms);  // a preempted push_back on a loaded machine is no stall
  std::vector<int> order;
  std::atomic<int> elsewhere{0};
  std::promise<void> done;
  for (int i = 0; i < 100; ++i)
    standby.post([&, i] {
      if (std::this_thread::get_id() != t.th.get_id()) ++elsewhere;
      order.push_back(i);  // one at a time on the one io thread
      if (i == 99) done.set_value();
    });
  REQUIRE(done.get_future().wait_for(4s) == std::future_status::ready);
  REQUIRE(order.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(order[i] == i);
  CHECK(elsewhere == 0);
  CHECK(standby.rescues() == 0);
}

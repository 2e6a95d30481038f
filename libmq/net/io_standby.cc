#include "net/io_standby.h"
#include "util/thread_name.h"

namespace mq::net {

namespace {

int64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

constexpr int64_t kActiveNs = 1'000'000'000;  // looks while posts are this recent
constexpr auto kLook = std::chrono::milliseconds(1);

}  // namespace

IoStandby::IoStandby(asio::io_context& io, std::chrono::microseconds after)
    : io_(io), after_ns_(std::chrono::duration_cast<std::chrono::nanoseconds>(after).count()) {
  standby_ = std::thread([this] { standby_loop(); });
}

IoStandby::~IoStandby() {
  {
    std::lock_guard lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  standby_.join();
}

void IoStandby::post(std::function<void()> f) {
  last_post_.store(steady_ns());
  // Seq-cst with standby_loop's store of sleeping_ then load of last_post_:
  // either it sees this post and stays awake, or this sees it asleep.
  if (sleeping_.exchange(false)) {
    std::lock_guard lk(mu_);
    cv_.notify_one();
  }
  asio::post(io_, [this, f = std::move(f)] {
    running_since_.store(steady_ns());
    f();
    running_since_.store(0);
  });
}

void IoStandby::standby_loop() {
  name_this_thread("mq-io-standby");
  std::unique_lock lk(mu_);
  while (!stop_) {
    if (steady_ns() - last_post_.load() > kActiveNs) {
      sleeping_ = true;
      if (steady_ns() - last_post_.load() > kActiveNs)  // no post since: sleep until one
        cv_.wait(lk, [&] { return stop_ || !sleeping_; });
      sleeping_ = false;
      continue;
    }
    cv_.wait_for(lk, kLook, [&] { return stop_; });
    int64_t since = running_since_.load();
    if (stop_ || since == 0 || steady_ns() - since < after_ns_) continue;
    rescues_.fetch_add(1);
    lk.unlock();
    // Serve the others until that function returns (a stopped io_context
    // runs nothing: then just wait for it).
    while (running_since_.load() == since) {
      if (io_.stopped())
        std::this_thread::sleep_for(std::chrono::microseconds(200));
      else
        io_.run_one_for(kLook);
      std::lock_guard g(mu_);
      if (stop_) break;
    }
    lk.lock();
  }
}

}  // namespace mq::net

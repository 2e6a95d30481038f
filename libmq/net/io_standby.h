// IoStandby: runs functions that may block (a group commit's fdatasync and
// answers, see MessageStore::set_round_runner) on an io_context's threads,
// and keeps the io_context serving while one blocks: when a posted function
// has run longer than `after`, a standby thread runs the io_context's other
// handlers until it returns. With one io thread this is what keeps consumers
// and other connections served while a disk stalls inside that fdatasync.
//
// The standby thread looks every millisecond while functions were posted in
// the last second and sleeps otherwise (no wake-ups on an idle broker).
//
// Threading: post() from any thread; posted functions run one at a time
// (the store posts its next round only after the last one returned).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>

#include "net/asio.h"

namespace mq::net {

class IoStandby {
 public:
  explicit IoStandby(asio::io_context& io,
                     std::chrono::microseconds after = std::chrono::microseconds(2000));
  ~IoStandby();  // stops the standby thread
  IoStandby(const IoStandby&) = delete;
  IoStandby& operator=(const IoStandby&) = delete;

  // Runs `f` on one of the io_context's threads, after the handlers already queued.
  void post(std::function<void()> f);
  // How often the standby thread stepped in.
  uint64_t rescues() const { return rescues_.load(); }

 private:
  void standby_loop();

  asio::io_context& io_;
  const int64_t after_ns_;
  std::atomic<int64_t> running_since_{0};  // steady ns when the running function started; 0: none
  std::atomic<int64_t> last_post_{0};
  std::atomic<bool> sleeping_{false};
  std::atomic<uint64_t> rescues_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  std::thread standby_;
};

}  // namespace mq::net

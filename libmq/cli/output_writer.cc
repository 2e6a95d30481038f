#include "cli/output_writer.h"

#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <optional>

namespace mq::cli {

namespace {

// Interrupts the background thread's blocked write(2) (no SA_RESTART: it
// returns EINTR or a short count) when the writer gives up.
constexpr int kWakeSignal = SIGURG;
void on_wake(int) {}

}  // namespace

OutputWriter::~OutputWriter() {
  if (thread_.joinable()) stop_background(true);
}

bool OutputWriter::write(std::string_view s) {
  if (!ok()) return false;
  buf_.append(s);
  return commit();
}

bool OutputWriter::commit() {
  if (!ok()) {
    buf_.clear();
    return false;
  }
  if (buf_.size() >= block_) return flush();
  return true;
}

bool OutputWriter::flush() {
  if (!thread_.joinable()) {
    handed_ += buf_.size();
    write_all(buf_);
    buf_.clear();
    return ok();
  }
  if (!ok()) {
    buf_.clear();
    return false;
  }
  if (buf_.empty()) return true;
  handed_ += buf_.size();
  std::lock_guard lk(mu_);
  if (queue_.empty()) {
    queue_.swap(buf_);  // no copy while the reader keeps up
  } else {
    queue_.append(buf_);  // the thread is still busy with a block: a slow reader
  }
  buf_.clear();
  cv_.notify_all();
  return true;
}

void OutputWriter::write_all(const std::string& data) {
  size_t pos = 0;
  while (pos < data.size()) {
    ssize_t n = ::write(fd_, data.data() + pos, data.size() - pos);
    if (n < 0) {
      if (errno == EINTR) {
        if (give_up_.load()) return;
        continue;
      }
      int err = errno;
      if (err == EPIPE) {
        closed_.store(true, std::memory_order_release);
      } else {
        std::lock_guard lk(mu_);
        // EBADF: the fd is not open for writing (see cli::reserve_std_fds).
        error_ = err == EBADF ? Status::io_error("cannot write output: standard output is closed")
                              : Status::from_errno("cannot write output", err);
        failed_.store(true, std::memory_order_release);
      }
      return;
    }
    pos += static_cast<size_t>(n);
    written_.fetch_add(static_cast<uint64_t>(n), std::memory_order_release);
    if (give_up_.load()) return;
  }
}

void OutputWriter::start_background() {
  if (thread_.joinable()) return;
  struct sigaction sa {};
  sa.sa_handler = on_wake;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART
  ::sigaction(kWakeSignal, &sa, nullptr);
  thread_ = std::thread([this] { background_loop(); });
}

void OutputWriter::background_loop() {
  std::unique_lock lk(mu_);
  for (;;) {
    cv_.wait(lk, [&] { return !queue_.empty() || quit_; });
    if (queue_.empty() || give_up_.load() || !ok()) return;
    back_.swap(queue_);
    busy_ = true;
    lk.unlock();
    write_all(back_);
    lk.lock();
    back_.clear();
    busy_ = false;
    cv_.notify_all();
  }
}

bool OutputWriter::flush_wait(std::chrono::milliseconds max) {
  if (!flush()) return false;
  if (!thread_.joinable()) return true;
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, max, [&] { return (!busy_ && queue_.empty()) || !ok(); });
  return ok();
}

bool OutputWriter::backlogged() const {
  // Asked per message: only right after a hand-over (buf_ empty) is it worth a
  // lock; otherwise the next hand-over asks again, so the bound stays ~2 blocks.
  if (!thread_.joinable() || !buf_.empty()) return false;
  std::lock_guard lk(mu_);
  return busy_ && queue_.size() + buf_.size() >= block_;
}

void OutputWriter::wait_room(const std::atomic<bool>& stop) {
  if (!thread_.joinable()) return;
  (void)flush();
  std::unique_lock lk(mu_);
  while (busy_ && queue_.size() >= block_ && ok() && !stop.load()) cv_.wait_for(lk, std::chrono::milliseconds(50));
}

bool OutputWriter::finish(const std::atomic<bool>* stop, std::chrono::milliseconds grace) {
  if (!thread_.joinable()) return flush();
  (void)flush();
  bool all;
  {
    std::unique_lock lk(mu_);
    std::optional<std::chrono::steady_clock::time_point> give_up_at;
    while ((busy_ || !queue_.empty()) && ok()) {
      auto now = std::chrono::steady_clock::now();
      if (!give_up_at && stop && stop->load()) give_up_at = now + grace;
      if (give_up_at && now >= *give_up_at) break;
      cv_.wait_for(lk, std::chrono::milliseconds(50));
    }
    all = !busy_ && queue_.empty() && ok();
  }
  stop_background(!all);
  return all;
}

void OutputWriter::stop_background(bool give_up) {
  if (give_up) give_up_.store(true);
  {
    std::lock_guard lk(mu_);
    quit_ = true;
    cv_.notify_all();
  }
  if (give_up) {
    // The thread may be blocked writing to a reader that does not read.
    std::unique_lock lk(mu_);
    while (busy_) {
      pthread_kill(thread_.native_handle(), kWakeSignal);
      cv_.wait_for(lk, std::chrono::milliseconds(10));
    }
  }
  thread_.join();
  queue_.clear();
  buf_.clear();
}

bool OutputWriter::reader_gone() {
  if (closed()) return true;
  struct pollfd p {fd_, 0, 0};
  if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP)) != 0) closed_.store(true);
  return closed();
}

Status OutputWriter::error() const {
  std::lock_guard lk(mu_);
  return error_;
}

}  // namespace mq::cli

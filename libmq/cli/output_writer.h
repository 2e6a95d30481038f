// Buffered writer for stdout (or any fd): large writes while data keeps
// flowing, flush() when the caller has nothing more immediately available.
// A closed reader (EPIPE) is a normal end: closed() turns true, later writes
// are dropped, and the caller stops cleanly with status 0. Requires SIGPIPE
// to be ignored (cli::ignore_sigpipe) so EPIPE arrives as an error code.
//
// start_background() moves the write(2) calls to a thread of the writer's
// own, so that a slow reader (a full pipe) never blocks the caller: a group
// member keeps sending heartbeats and a stop signal is seen at once. Then
// commit() and flush() hand the buffer over without waiting, position() and
// bytes_written() tell what reached the fd, backlogged() says to stop adding,
// and finish() waits for the rest (or gives it up when asked to stop).
//
// Not thread-safe: one caller thread per writer.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

#include "util/status.h"

namespace mq::cli {

class OutputWriter {
 public:
  explicit OutputWriter(int fd, size_t block = 256 * 1024) : fd_(fd), block_(block) {
    buf_.reserve(block_ + 4096);
  }
  OutputWriter(const OutputWriter&) = delete;
  OutputWriter& operator=(const OutputWriter&) = delete;
  ~OutputWriter();  // gives up what the background thread has not written

  // Appends; writes a block once the buffer holds `block` bytes. False once closed or failed.
  bool write(std::string_view s);
  // The buffer to format into directly; call commit() afterwards.
  std::string& buffer() { return buf_; }
  bool commit();
  // Writes everything buffered (in the background: hands it over). False once closed or failed.
  bool flush();

  void start_background();
  // flush(), then (in the background) waits up to `max` for the thread to have
  // written everything: a reader that keeps up is done at once, a stalled one
  // holds the caller up for `max` at most. False once closed or failed.
  bool flush_wait(std::chrono::milliseconds max);
  // Background, checked right after commit() handed a block over (false
  // otherwise, without a lock): that block waits while the thread still writes.
  bool backlogged() const;
  // Waits until backlogged() is false, the writer failed or *stop turns true.
  void wait_room(const std::atomic<bool>& stop);
  // Writes everything and stops the background thread. Once *stop is true,
  // what is not written within `grace` is given up (a blocked write is
  // interrupted, so the reader may get a partial line). True when everything
  // was written.
  bool finish(const std::atomic<bool>* stop = nullptr,
              std::chrono::milliseconds grace = std::chrono::milliseconds(1000));

  // Checks without writing whether the reader of a pipe or socket went away
  // (poll reports POLLERR/POLLHUP); sets closed(). For idle tails.
  bool reader_gone();
  // The reader went away (EPIPE): a normal end.
  bool closed() const { return closed_.load(std::memory_order_acquire); }
  // A real write error (not EPIPE), e.g. disk full when stdout is a file.
  Status error() const;
  bool ok() const { return !closed() && !failed_.load(std::memory_order_acquire); }
  // Bytes the fd took.
  uint64_t bytes_written() const { return written_.load(std::memory_order_acquire); }
  // Bytes given to the writer so far (written, being written or buffered):
  // what was appended is out once bytes_written() reaches this.
  uint64_t position() const { return handed_ + buf_.size(); }

 private:
  void write_all(const std::string& data);  // on whichever thread writes
  void background_loop();
  void stop_background(bool give_up);

  int fd_;
  size_t block_;
  std::string buf_;
  uint64_t handed_ = 0;  // bytes moved out of buf_ (written or handed to the thread)
  std::atomic<uint64_t> written_{0};

  std::atomic<bool> closed_{false};
  std::atomic<bool> failed_{false};  // error_ is set
  mutable std::mutex mu_;  // the fields below, once the background thread runs
  std::condition_variable cv_;
  Status error_;
  std::thread thread_;
  std::string queue_;  // handed over, waiting for the thread
  std::string back_;   // being written by the thread
  bool busy_ = false;  // back_ is being written
  bool quit_ = false;
  std::atomic<bool> give_up_{false};
};

}  // namespace mq::cli

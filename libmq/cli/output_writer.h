// Buffered writer for stdout (or any fd): large writes while data keeps
// flowing, flush() when the caller has nothing more immediately available.
// A closed reader (EPIPE) is a normal end: closed() turns true, later writes
// are dropped, and the caller stops cleanly with status 0. Requires SIGPIPE
// to be ignored (cli::ignore_sigpipe) so EPIPE arrives as an error code.
//
// Not thread-safe: one writer per thread.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace mq::cli {

class OutputWriter {
 public:
  explicit OutputWriter(int fd, size_t block = 256 * 1024) : fd_(fd), block_(block) {
    buf_.reserve(block_ + 4096);
  }
  OutputWriter(const OutputWriter&) = delete;
  OutputWriter& operator=(const OutputWriter&) = delete;

  // Appends; writes a block once the buffer holds `block` bytes. False once closed or failed.
  bool write(std::string_view s);
  // The buffer to format into directly; call commit() afterwards.
  std::string& buffer() { return buf_; }
  bool commit();
  // Writes everything buffered. False once closed or failed.
  bool flush();

  // Checks without writing whether the reader of a pipe or socket went away
  // (poll reports POLLERR/POLLHUP); sets closed(). For idle tails.
  bool reader_gone();
  // The reader went away (EPIPE): a normal end.
  bool closed() const { return closed_; }
  // A real write error (not EPIPE), e.g. disk full when stdout is a file.
  const Status& error() const { return error_; }
  bool ok() const { return !closed_ && error_.is_ok(); }
  uint64_t bytes_written() const { return written_; }

 private:
  int fd_;
  size_t block_;
  std::string buf_;
  bool closed_ = false;
  Status error_;
  uint64_t written_ = 0;
};

}  // namespace mq::cli

#include "cli/output_writer.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

namespace mq::cli {

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
  size_t pos = 0;
  while (pos < buf_.size() && ok()) {
    ssize_t n = ::write(fd_, buf_.data() + pos, buf_.size() - pos);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EPIPE) {
        closed_ = true;
      } else {
        error_ = Status::from_errno("cannot write output", errno);
      }
      break;
    }
    pos += static_cast<size_t>(n);
    written_ += static_cast<uint64_t>(n);
  }
  buf_.clear();
  return ok();
}

bool OutputWriter::reader_gone() {
  if (closed_) return true;
  struct pollfd p {fd_, 0, 0};
  if (::poll(&p, 1, 0) > 0 && (p.revents & (POLLERR | POLLHUP)) != 0) closed_ = true;
  return closed_;
}

}  // namespace mq::cli

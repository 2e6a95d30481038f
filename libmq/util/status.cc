#include "util/status.h"

#include <cerrno>
#include <cstring>

namespace mq {

std::string_view code_name(Code c) {
  switch (c) {
    case Code::ok: return "ok";
    case Code::invalid_argument: return "invalid argument";
    case Code::not_found: return "not found";
    case Code::corruption: return "corruption";
    case Code::io_error: return "i/o error";
    case Code::disk_full: return "disk full";
    case Code::unavailable: return "unavailable";
    case Code::timeout: return "timeout";
    case Code::permission_denied: return "permission denied";
    case Code::limit_reached: return "limit reached";
    case Code::interrupted: return "interrupted";
  }
  return "unknown";
}

Status Status::from_errno(std::string_view what, int err) {
  Code c = Code::io_error;
  if (err == ENOSPC || err == EDQUOT) c = Code::disk_full;
  if (err == ENOENT) c = Code::not_found;
  if (err == EACCES || err == EPERM) c = Code::permission_denied;
  // Out of file descriptors: a passing shortage (a send fails BUSY and is retried), not damage.
  if (err == EMFILE || err == ENFILE) c = Code::unavailable;
  return {c, fmt::format("{}: {}", what, std::strerror(err))};
}

Status Status::with_context(std::string_view ctx) const {
  if (is_ok()) return *this;
  return {code_, fmt::format("{}: {}", ctx, message_)};
}

std::string Status::to_string() const {
  if (is_ok()) return "ok";
  return message_.empty() ? std::string(code_name(code_)) : message_;
}

}  // namespace mq

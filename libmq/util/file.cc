#include "util/file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>

namespace mq {

UniqueFd& UniqueFd::operator=(UniqueFd&& o) noexcept {
  if (this != &o) reset(o.release());
  return *this;
}

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Status fsync_dir(const fs::path& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Status::from_errno(dir.string(), errno);
  if (::fsync(fd.get()) != 0) return Status::from_errno("fsync " + dir.string(), errno);
  return Status::ok();
}

Status write_file_atomic(const fs::path& path, std::string_view data) {
  fs::path tmp = path;
  tmp += ".tmp";
  UniqueFd fd(::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd) return Status::from_errno(tmp.string(), errno);
  // A failed write (a full disk) leaves no empty or partial .tmp behind.
  auto failed = [&](const char* what) {
    Status st = Status::from_errno(what + tmp.string(), errno);
    fd.reset();
    ::unlink(tmp.c_str());
    return st;
  };
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0) {
      if (errno == EINTR) continue;
      return failed("write ");
    }
    done += static_cast<size_t>(n);
  }
  if (::fdatasync(fd.get()) != 0) return failed("fdatasync ");
  fd.reset();
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    Status st = Status::from_errno("rename " + tmp.string() + " to " + path.string(), errno);
    ::unlink(tmp.c_str());
    return st;
  }
  return fsync_dir(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

Result<std::string> read_file(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::from_errno(path.string(), errno);
  std::string out;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd.get(), buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("read " + path.string(), errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Result<DirLock> DirLock::acquire(const fs::path& dir) {
  fs::path p = dir / "LOCK";
  UniqueFd fd(::open(p.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
  if (!fd) return Status::from_errno(p.string(), errno);
  if (::flock(fd.get(), LOCK_EX | LOCK_NB) != 0) {
    if (errno == EWOULDBLOCK) {
      char buf[32] = {};
      ssize_t n = ::pread(fd.get(), buf, sizeof buf - 1, 0);
      std::string pid = n > 0 ? std::string(buf, static_cast<size_t>(n)) : "?";
      while (!pid.empty() && (pid.back() == '\n' || pid.back() == ' ')) pid.pop_back();
      return Status::unavailable(
          fmt::format("data directory {} is in use by another broker (pid {})", dir.string(), pid));
    }
    return Status::from_errno("lock " + p.string(), errno);
  }
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd.get(), 0) != 0 || ::pwrite(fd.get(), pid.data(), pid.size(), 0) < 0) {
    return Status::from_errno("write " + p.string(), errno);
  }
  return DirLock(std::move(fd));
}

}  // namespace mq

// Small POSIX file helpers: an owning fd, atomic replace, directory fsync and
// the data-directory lock.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "util/status.h"

namespace mq {

namespace fs = std::filesystem;

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept;
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }
  int get() const { return fd_; }
  int release() { int f = fd_; fd_ = -1; return f; }
  void reset(int fd = -1);
  explicit operator bool() const { return fd_ >= 0; }

 private:
  int fd_ = -1;
};

// Writes `data` to `path` durably and atomically: temp file, fdatasync, rename,
// fsync of the directory. Readers see the old or the new content, never a mix.
Status write_file_atomic(const fs::path& path, std::string_view data);
Result<std::string> read_file(const fs::path& path);
Status fsync_dir(const fs::path& dir);

// Exclusive flock on DIR/LOCK, held for the lifetime of the object.
class DirLock {
 public:
  // Fails with "data directory DIR is in use by another broker (pid N)" when held elsewhere.
  static Result<DirLock> acquire(const fs::path& dir);
  DirLock(DirLock&&) = default;
  DirLock& operator=(DirLock&&) = default;

 private:
  explicit DirLock(UniqueFd fd) : fd_(std::move(fd)) {}
  UniqueFd fd_;
};

}  // namespace mq

#include "storage/file_system.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "util/file.h"

namespace mq::storage {

namespace {

class PosixFile final : public File {
 public:
  PosixFile(UniqueFd fd, fs::path path) : fd_(std::move(fd)), path_(std::move(path)) {}

  Result<size_t> pwrite(std::string_view data, uint64_t offset) override {
    for (;;) {
      ssize_t n = ::pwrite(fd_.get(), data.data(), data.size(), static_cast<off_t>(offset));
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      return Status::from_errno("write " + path_.string(), errno);
    }
  }

  Result<size_t> pread(char* buf, size_t n, uint64_t offset) const override {
    size_t done = 0;
    while (done < n) {
      ssize_t r = ::pread(fd_.get(), buf + done, n - done, static_cast<off_t>(offset + done));
      if (r < 0) {
        if (errno == EINTR) continue;
        return Status::from_errno("read " + path_.string(), errno);
      }
      if (r == 0) break;
      done += static_cast<size_t>(r);
    }
    return done;
  }

  Status sync() override {
    if (::fdatasync(fd_.get()) != 0) return Status::from_errno("fdatasync " + path_.string(), errno);
    return Status::ok();
  }

  Status truncate(uint64_t size) override {
    for (;;) {
      if (::ftruncate(fd_.get(), static_cast<off_t>(size)) == 0) return Status::ok();
      if (errno == EINTR) continue;
      return Status::from_errno("truncate " + path_.string(), errno);
    }
  }

  Result<bool> punch_hole(uint64_t offset, uint64_t len) override {
    for (;;) {
      int mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
      if (::fallocate(fd_.get(), mode, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0)
        return true;
      if (errno == EINTR) continue;
      // Not every file system can (vfat, some FUSE and network ones).
      if (errno == EOPNOTSUPP || errno == ENOSYS) return false;
      return Status::from_errno("punch hole " + path_.string(), errno);
    }
  }

  Result<bool> reserve(uint64_t offset, uint64_t len) override {
    for (;;) {
      if (::fallocate(fd_.get(), FALLOC_FL_KEEP_SIZE, static_cast<off_t>(offset), static_cast<off_t>(len)) == 0)
        return true;
      if (errno == EINTR) continue;
      if (errno == EOPNOTSUPP || errno == ENOSYS) return false;
      return Status::from_errno("reserve space in " + path_.string(), errno);
    }
  }

  Result<uint64_t> size() const override {
    struct stat st;
    if (::fstat(fd_.get(), &st) != 0) return Status::from_errno("stat " + path_.string(), errno);
    return static_cast<uint64_t>(st.st_size);
  }

  const fs::path& path() const override { return path_; }

 private:
  UniqueFd fd_;
  fs::path path_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<File>> open(const fs::path& path, bool create) override {
    int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
    UniqueFd fd(::open(path.c_str(), flags, 0644));
    if (!fd) return Status::from_errno(path.string(), errno);
    return std::unique_ptr<File>(std::make_unique<PosixFile>(std::move(fd), path));
  }

  Status remove(const fs::path& path) override {
    if (::unlink(path.c_str()) != 0) return Status::from_errno("remove " + path.string(), errno);
    return Status::ok();
  }

  Status rename(const fs::path& from, const fs::path& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return Status::from_errno("rename " + from.string(), errno);
    return Status::ok();
  }

  Result<std::vector<std::string>> list(const fs::path& dir) override {
    DIR* d = ::opendir(dir.c_str());
    if (!d) return Status::from_errno(dir.string(), errno);
    std::vector<std::string> names;
    while (dirent* e = ::readdir(d)) {
      std::string_view n = e->d_name;
      if (n != "." && n != "..") names.emplace_back(n);
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  bool exists(const fs::path& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }

  bool is_dir(const fs::path& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
  }

  Status mkdirs(const fs::path& dir) override {
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::from_errno("mkdir " + dir.string(), ec.value());
    return Status::ok();
  }

  Status sync_dir(const fs::path& dir) override { return fsync_dir(dir); }
};

}  // namespace

FileSystem& FileSystem::posix() {
  static PosixFileSystem instance;
  return instance;
}

Status write_all(File& f, std::string_view data, uint64_t offset) {
  size_t done = 0;
  while (done < data.size()) {
    auto n = f.pwrite(data.substr(done), offset + done);
    if (!n) return n.status();
    if (*n == 0) return Status::io_error("write " + f.path().string() + ": no progress");
    done += *n;
  }
  return Status::ok();
}

Status read_exact(const File& f, char* buf, size_t n, uint64_t offset) {
  auto r = f.pread(buf, n, offset);
  if (!r) return r.status();
  if (*r != n)
    return Status::corruption(fmt::format("{}: short read at {}", f.path().string(), offset + *r));
  return Status::ok();
}

Result<std::string> read_whole(FileSystem& fsys, const fs::path& path) {
  auto f = fsys.open(path, false);
  if (!f) return f.status();
  auto size = (*f)->size();
  if (!size) return size.status();
  std::string out(*size, '\0');
  auto r = (*f)->pread(out.data(), out.size(), 0);
  if (!r) return r.status();
  out.resize(*r);
  return out;
}

Status replace_file(FileSystem& fsys, const fs::path& path, std::string_view data) {
  fs::path tmp = path;
  tmp += ".tmp";
  {
    auto f = fsys.open(tmp, true);
    if (!f) return f.status();
    Status st = (*f)->truncate(0);
    if (st) st = write_all(**f, data, 0);
    if (st) st = (*f)->sync();
    if (!st) {
      (void)fsys.remove(tmp);  // a full disk leaves no empty or partial .tmp behind
      return st;
    }
  }
  MQ_RETURN_IF_ERROR(fsys.rename(tmp, path));
  return fsys.sync_dir(path.parent_path().empty() ? fs::path(".") : path.parent_path());
}

}  // namespace mq::storage

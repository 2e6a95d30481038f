// The storage I/O seam. Every byte the store reads or writes goes through a
// FileSystem: real POSIX files in production (plain pwrite/pread/fdatasync/
// ftruncate, so libfiu can fail them), a fault-injecting in-memory one in
// tests (storage/fault_fs.h) that can drop unsynced bytes and fail writes.
//
// Durability contract (what the store relies on): bytes written to a File are
// durable once sync() returned OK; a newly created, removed or renamed
// directory entry is durable once sync_dir() of its directory returned OK.
// Threading: a File may be used from several threads at once (pread
// concurrently with pwrite at other offsets); FileSystem members are
// thread-safe.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "util/status.h"

namespace mq::storage {

namespace fs = std::filesystem;

class File {
 public:
  virtual ~File() = default;
  // One write attempt at `offset`: returns the bytes written, which may be
  // fewer than data.size() (a short write); an error when nothing was written.
  virtual Result<size_t> pwrite(std::string_view data, uint64_t offset) = 0;
  // Reads up to n bytes at `offset`; fewer only at the end of the file.
  virtual Result<size_t> pread(char* buf, size_t n, uint64_t offset) const = 0;
  // fdatasync: makes written bytes and the size durable.
  virtual Status sync() = 0;
  virtual Status truncate(uint64_t size) = 0;
  // Frees the disk blocks of [offset, offset + len) without changing the
  // size: the range reads as zeros from then on (whole blocks are freed,
  // partial ones zeroed). false when the file system cannot do it (the bytes
  // stay as they were). Like a write, it is durable after sync().
  virtual Result<bool> punch_hole(uint64_t offset, uint64_t len) = 0;
  // Allocates the disk blocks of [offset, offset + len) without changing the
  // size (fallocate KEEP_SIZE): a later write inside the range cannot fail
  // for lack of space. ENOSPC when the blocks are not there; false when the
  // file system cannot do it. A truncate frees what lies past the new size.
  virtual Result<bool> reserve(uint64_t offset, uint64_t len) = 0;
  virtual Result<uint64_t> size() const = 0;
  virtual const fs::path& path() const = 0;
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;
  // Opens an existing file read-write; with `create`, creates it when missing.
  virtual Result<std::unique_ptr<File>> open(const fs::path& path, bool create) = 0;
  virtual Status remove(const fs::path& path) = 0;
  virtual Status rename(const fs::path& from, const fs::path& to) = 0;
  // Names (not paths) of the entries of `dir`, sorted; not_found when `dir` is missing.
  virtual Result<std::vector<std::string>> list(const fs::path& dir) = 0;
  virtual bool exists(const fs::path& path) = 0;
  virtual bool is_dir(const fs::path& path) = 0;
  // Creates `dir` and missing parents.
  virtual Status mkdirs(const fs::path& dir) = 0;
  virtual Status sync_dir(const fs::path& dir) = 0;

  // The real file system (a process-wide instance).
  static FileSystem& posix();
};

// Writes all of `data` at `offset`, looping over short writes. On error some
// prefix may have been written: the caller truncates it away.
Status write_all(File& f, std::string_view data, uint64_t offset);
// Reads exactly n bytes at `offset`, or fails ("short read at N").
Status read_exact(const File& f, char* buf, size_t n, uint64_t offset);
// Reads the whole file.
Result<std::string> read_whole(FileSystem& fs, const fs::path& path);
// Atomically replaces `path` with `data`: temp file, sync, rename, sync_dir.
Status replace_file(FileSystem& fs, const fs::path& path, std::string_view data);

}  // namespace mq::storage

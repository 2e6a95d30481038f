// FaultFileSystem: an in-memory FileSystem for tests that models what a power
// loss keeps and fails I/O on demand.
//
// Per file it keeps the current content and the durable content (as of the
// last successful sync()); per directory entry it keeps whether the entry is
// durable (as of the last sync_dir() of its directory). crash() drops
// everything not durable: file contents go back to their synced state, files
// created since the last sync_dir vanish, removed/renamed ones come back, and
// every handle opened before the crash fails from then on (the old process is
// gone). Directories are durable as soon as they are made (a simplification).
//
// Faults: ENOSPC once a write budget is used up (a write then writes what
// fits: a short write, the next one fails; writes over bytes already in the
// file or inside reserve()d space take nothing from it), EIO on sync (once or always,
// optionally only for paths containing a substring), EIO on writes, short writes, a file
// system that cannot punch holes, and a slow disk: syncs that block until the
// test lets them go, or that take a given time. Reads are counted per reading thread.
// Thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>

#include "storage/file_system.h"

namespace mq::storage {

class FaultFileSystem final : public FileSystem {
 public:
  enum class SyncFault { off, once, always };
  struct Node {
    std::string current;
    std::string durable;
    uint64_t reserved = 0;  // reserve()d up to here: writes below it use no budget
  };

  Result<std::unique_ptr<File>> open(const fs::path& path, bool create) override;
  Status remove(const fs::path& path) override;
  Status rename(const fs::path& from, const fs::path& to) override;
  Result<std::vector<std::string>> list(const fs::path& dir) override;
  bool exists(const fs::path& path) override;
  bool is_dir(const fs::path& path) override;
  Status mkdirs(const fs::path& dir) override;
  Status sync_dir(const fs::path& dir) override;

  // Simulated power loss (see above). Until restart(), every operation fails
  // with EIO, new handles included: the crashed process can write nothing more.
  void crash();
  void restart();
  // After `bytes` more bytes written, writes fail with ENOSPC; nullopt = unlimited.
  void set_write_budget(std::optional<uint64_t> bytes);
  // Writes past `size` in files whose path contains `path_contains` fail with
  // ENOSPC (a disk that fills up at that point of the file); nullopt = none.
  void set_file_limit(std::optional<uint64_t> size, std::string path_contains = "");
  // Makes sync() fail with EIO (for files whose path contains `path_contains`).
  void fail_sync(SyncFault mode, std::string path_contains = "");
  // The next `times` sync_dir() of directories whose path contains `path_contains` fail as
  // when the directory cannot be opened at the open-file limit (EMFILE), without syncing.
  void fail_dir_open(int times, std::string path_contains = "");
  // While on, pwrite to files whose path contains `path_contains` fails with EIO.
  void fail_writes(bool on, std::string path_contains = "");
  // Every pwrite writes at most half of what it was asked (at least one byte).
  void set_short_writes(bool on);
  // punch_hole() zeroes the range (true, the default) or reports that the
  // file system cannot punch holes (false) and leaves the bytes.
  void set_punch_holes(bool supported);
  // reserve() takes the range from the write budget (all or nothing, ENOSPC)
  // and within the file limit (true, the default), or reports that the file
  // system cannot reserve (false).
  void set_reserve(bool supported);
  // Bytes reserve()d in `path` so far (its allocation past the size included).
  uint64_t reserved(const fs::path& path);
  // While on, sync() of files whose path contains `path_contains` blocks
  // (a disk that takes as long as the test wants); off lets them complete.
  void hold_syncs(bool on, std::string path_contains = "");
  // Every sync() takes at least `d` (a disk with that fdatasync latency).
  void set_sync_delay(std::chrono::microseconds d);
  // syncs blocked by hold_syncs right now.
  size_t held_syncs();
  // Likewise for pwrite (checked again when let go: fail_writes set meanwhile applies).
  void hold_writes(bool on, std::string path_contains = "");
  size_t held_writes();

  // Test inspection and damage. content() is the current content ("" when missing).
  std::string content(const fs::path& path);
  // Replaces both current and durable content (damage on the "disk").
  void set_content(const fs::path& path, std::string data);
  uint64_t sync_count();
  // pwrite calls so far to files whose path contains `path_contains`.
  uint64_t write_count(const std::string& path_contains = "");
  // Bytes read so far by thread `who` from files whose path contains `path_contains`.
  uint64_t bytes_read(std::thread::id who, const std::string& path_contains = "");
  std::vector<std::string> files();  // every live file path, sorted

  // Used by the file handles.
  Result<size_t> do_pwrite(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p,
                           std::string_view data, uint64_t offset);
  Result<size_t> do_pread(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p, char* buf,
                          size_t len, uint64_t offset);
  Status do_sync(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p);
  Result<bool> do_punch_hole(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p,
                             uint64_t offset, uint64_t len);
  Result<bool> do_reserve(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p, uint64_t offset,
                          uint64_t len);
  Status do_truncate(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p, uint64_t size);
  Result<uint64_t> do_size(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p);

 private:
  Status check_gen(uint64_t gen, const fs::path& p) const;
  Status check_up(const fs::path& p) const;
  static std::string key(const fs::path& p);

  std::mutex mu_;
  std::map<std::string, std::shared_ptr<Node>> live_;
  std::map<std::string, std::shared_ptr<Node>> durable_entries_;
  std::set<std::string> dirs_{"/", "."};
  uint64_t generation_ = 0;
  bool down_ = false;
  std::optional<uint64_t> write_budget_;
  std::optional<uint64_t> file_limit_;
  std::string file_limit_path_;
  SyncFault sync_fault_ = SyncFault::off;
  std::string sync_fault_path_;
  int dir_open_faults_ = 0;
  std::string dir_open_fault_path_;
  bool short_writes_ = false;
  bool fail_writes_ = false;
  bool hold_writes_ = false;
  std::string hold_writes_path_;
  size_t held_writes_ = 0;
  std::string fail_writes_path_;
  std::map<std::string, uint64_t> writes_;  // path -> pwrite calls
  bool punch_holes_ = true;
  bool reserve_ = true;
  bool hold_syncs_ = false;
  std::string hold_path_;
  size_t held_ = 0;
  std::chrono::microseconds sync_delay_{0};
  std::condition_variable hold_cv_;
  uint64_t syncs_ = 0;
  std::map<std::pair<std::thread::id, std::string>, uint64_t> reads_;  // (thread, path) -> bytes
};

}  // namespace mq::storage

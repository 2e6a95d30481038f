// The queue index of one (topic, queue): DIR/index/<topic>/<queue>, fixed
// 24-byte entries, entry N describes offset N:
//   0 u64 log_pos   8 u32 record_size   12 u32 tag_hash   16 i64 store_ms
// Derived data: rebuilt from the commit log by recovery, so appends do not
// fsync it; the store syncs it at checkpoints.
//
// Trimming: once retention moved the queue's min offset, the whole file
// system blocks below its entry are punched out (fallocate PUNCH_HOLE,
// KEEP_SIZE): disk usage follows retention while the size and the offset ->
// entry arithmetic stay. Trimmed entries read as zeros (log_pos 0, store_ms
// 0), which keeps both sort orders the binary searches need: below any
// entry still stored. Where the file system cannot punch holes the entries
// simply stay (they point at deleted segments).
//
// Threading: writes and trims are serialised by the caller; reads may run
// concurrently (never of entries below the min offset the trim was for).
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "storage/file_system.h"

namespace mq::storage {

inline constexpr size_t kIndexEntrySize = 24;
// Trim granularity: a file system block on ext4, xfs and tmpfs.
inline constexpr uint64_t kTrimBlock = 4096;

struct IndexEntry {
  uint64_t log_pos = 0;
  uint32_t size = 0;
  uint32_t tag_hash = 0;
  int64_t store_ms = 0;
};

void encode_index_entry(const IndexEntry& e, char* out);
IndexEntry decode_index_entry(const char* in);

class QueueIndex {
 public:
  // Opens (or creates) the index file and drops a partial trailing entry.
  static Result<std::unique_ptr<QueueIndex>> open(FileSystem& fsys, const fs::path& path,
                                                  bool create);
  // Whole entries in the file when it was opened.
  uint64_t initial_count() const { return initial_count_; }

  // Writes encoded entries (a multiple of 24 bytes) starting at `offset`.
  Status write(uint64_t offset, std::string_view entries);
  // Like write(), but leaves the file alone when it already holds exactly
  // these bytes there (recovery rebuilding an intact index dirties nothing).
  Status write_if_changed(uint64_t offset, std::string_view entries);
  Result<std::vector<IndexEntry>> read(uint64_t offset, uint64_t n) const;
  Result<IndexEntry> get(uint64_t offset) const;
  // Allocates disk space for the entries [from, to) and some beyond (chunks
  // that grow with the file, 4 KiB to 1 MiB), so that writing them later
  // cannot fail for lack of space: the store answers appends before their
  // entries are written (see StoreImpl::write_deferred). false: the file
  // system cannot reserve space (nothing to rely on then).
  Result<bool> reserve(uint64_t from, uint64_t to);
  // Keeps the first `count` entries.
  Status truncate(uint64_t count);
  // Frees the disk space of the entries below `offset` in whole blocks of
  // kTrimBlock bytes (the entries of a partial block stay). The first call
  // after open covers the file from its start, later ones only what is new.
  Status trim_before(uint64_t offset);
  // Bytes of the file trimmed so far by this handle; false from trims() once
  // the file system said it cannot punch holes (trim_before is a no-op then).
  uint64_t trimmed_bytes() const { return trimmed_; }
  bool trims() const { return punch_ok_; }
  Status sync();
  // The first offset in [lo, hi) whose entry has log_pos >= pos (hi if none).
  Result<uint64_t> lower_bound_pos(uint64_t lo, uint64_t hi, uint64_t pos) const;
  // The first offset in [lo, hi) whose entry has store_ms >= ms (hi if none).
  Result<uint64_t> lower_bound_time(uint64_t lo, uint64_t hi, int64_t ms) const;
  const fs::path& path() const { return file_->path(); }

 private:
  QueueIndex(std::unique_ptr<File> f, uint64_t count) : file_(std::move(f)), initial_count_(count) {}
  template <class Pred>
  Result<uint64_t> lower_bound(uint64_t lo, uint64_t hi, Pred below) const;

  std::unique_ptr<File> file_;
  uint64_t initial_count_;
  uint64_t trimmed_ = 0;
  bool punch_ok_ = true;
  uint64_t reserved_ = 0;  // bytes: reserve()d below here (by this handle)
  bool reserve_ok_ = true;
};

}  // namespace mq::storage

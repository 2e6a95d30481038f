// The commit log: segment files DIR/commitlog/<20-digit base position>.
// Positions are global (segment base + offset in the segment); a record never
// spans segments. Appends go to the last (active) segment; when a batch does
// not fit, the active segment is synced and a new one starts at the end (a
// batch larger than a segment gets a segment of its own).
//
// Poisoning: a failed sync, or a failed write that cannot be truncated away,
// poisons the log: health() stays non-OK and every later append fails.
//
// Preallocation (start_preallocation): a background thread keeps the space
// just past the active segment's end written with zeros and synced, so that
// the fdatasync of a group commit writes data only: on ext4 an append that
// grows the file also has the size change written (here a 4 KiB append +
// fdatasync costs 20-40 % less in preallocated space). The zeros are never part of the log: size is the
// logical end, recovery ends the log at a zero tail without calling it a cut,
// and a roll or stop_preallocation() truncates the file back to its size.
// While the fdatasyncs cover 48 KiB or more each (on average over 100 ms), no
// zeros are written: there they cost more than they save.
//
// Threading: append/truncate_to/drop_before are serialised by the caller;
// reads, active(), sync_active() and the accessors may run concurrently.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <shared_mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/file_system.h"

namespace mq::storage {

struct Segment {
  uint64_t base = 0;
  std::unique_ptr<File> file;
  std::atomic<uint64_t> size{0};         // bytes written
  std::atomic<int64_t> first_store_ms{0};  // store time of its first record, 0 when empty
  // Preallocation, guarded by CommitLog's zero mutex: the file holds synced
  // zeros up to `zeroed` (when above size); appends write below `reserved`.
  uint64_t zeroed = 0;
  uint64_t zero_start = 0;  // the synced zeros are [zero_start, zeroed) (the zeroer may skip ahead)
  uint64_t reserved = 0;
  bool sealed = false;  // no longer active: never zeroed again
  bool zero_full = false;  // zeroed as far as the segment size allows
  uint64_t end() const { return base + size.load(); }
};

std::string segment_name(uint64_t base);

class CommitLog {
 public:
  // Opens every segment in `dir` (creating the dir and a first segment at
  // `initial_base` when there is none). Sizes are the file sizes: recovery
  // cuts what is not intact.
  static Result<std::unique_ptr<CommitLog>> open(FileSystem& fsys, const fs::path& dir,
                                                 uint64_t segment_size);

  // Writes `batch` (whole records) with one write at the end of the log and
  // returns its position. On failure the segment is truncated back (no stale
  // bytes follow the end) and nothing changes; if that truncate fails too, or
  // the sync before a roll fails, the log is poisoned.
  Result<uint64_t> append(std::string_view batch, int64_t first_store_ms);
  // Like append(), but a batch of at most 8 KiB that lands in the active
  // segment's synced zeros (preallocation: no write there can run out of space) is only
  // copied to the tail buffer, which the next sync_active() writes with one
  // pwrite before its fdatasync (for flush sync, whose appends nobody reads
  // before that). Reads of bytes not written yet fail. Elsewhere it writes
  // at once, after the tail.
  Result<uint64_t> append_deferred(std::string_view batch, int64_t first_store_ms);
  // Replication: writes `batch` at `pos`, which must be end(). Rolls to a new
  // segment at pos only when `new_segment` (and the active one is not empty);
  // never rolls by size, so segment files follow the master's exactly.
  Status append_at(std::string_view batch, uint64_t pos, bool new_segment, int64_t first_store_ms);
  // fdatasync of the active segment (older ones were synced when rolled),
  // the tail buffer written first. A failure poisons the log.
  Status sync_active();
  // Syncs every segment that starts at or after `pos` or contains it.
  Status sync_from(uint64_t pos);

  // Reads exactly n bytes at `pos`, which must lie inside one segment.
  Status read(uint64_t pos, char* buf, size_t n) const;
  // The segment holding `pos` (or whose end is `pos`); nullptr when none.
  std::shared_ptr<Segment> find(uint64_t pos) const;
  std::shared_ptr<Segment> active() const;
  std::vector<std::shared_ptr<Segment>> segments() const;
  // The first segment with base > pos; nullptr when none.
  std::shared_ptr<Segment> next_after(uint64_t pos) const;

  uint64_t start() const;
  uint64_t end() const;

  // Cuts the log at `pos`: truncates the segment holding it, deletes later
  // segments, syncs. Used by recovery.
  Status truncate_to(uint64_t pos);
  // Deletes the segments before the one starting at `new_start` (never the
  // active one) and syncs the directory.
  Status drop_before(uint64_t new_start);
  // An empty log (one segment, no bytes) starts over at `base` instead: its
  // segment file is replaced by an empty one there. For a slave that copies a
  // master whose retention deleted the log's first bytes.
  Status restart_empty_at(uint64_t base);

  // Starts the preallocation thread: up to `ahead` bytes of zeros past the
  // active segment's end (never past the segment size). Call after recovery.
  void start_preallocation(uint64_t ahead);
  // Stops it and truncates the active segment back to its end (synced): the
  // files on disk then hold exactly the log. Done before a clean checkpoint.
  Status stop_preallocation();
  // Zero bytes written ahead so far, and rounds that failed (e.g. disk full).
  uint64_t zeroed_bytes() const { return zeroed_bytes_.load(std::memory_order_relaxed); }
  uint64_t zero_failures() const { return zero_failures_.load(std::memory_order_relaxed); }

  ~CommitLog();

  Status health() const;
  void poison(Status why);
  // fdatasyncs of segment files issued so far (successful or not).
  uint64_t syncs() const { return syncs_.load(std::memory_order_relaxed); }
  const fs::path& dir() const { return dir_; }

 private:
  CommitLog(FileSystem& fsys, fs::path dir, uint64_t segment_size)
      : fs_(fsys), dir_(std::move(dir)), segment_size_(segment_size) {}
  Result<std::shared_ptr<Segment>> create_segment(uint64_t base);
  Result<uint64_t> append_impl(std::string_view batch, int64_t first_store_ms, bool defer);
  // Writes the tail buffer (one at a time; appends go on meanwhile). A
  // failure poisons the log.
  Status write_tail();
  Status sync_segment(Segment& seg);
  // Before writing [off, end) of seg: waits out zeros being written there and
  // wakes the preallocation thread when the zeros ahead run short. True
  // when the range lies in synced zeros.
  bool reserve(Segment& seg, uint64_t off, uint64_t end);
  // After a failed write at off: truncates the file there (zeros included).
  void drop_tail(Segment& seg, uint64_t off);
  // Truncates the file to the segment's size (its zeros go; not synced).
  Status cut_zeros(Segment& seg);
  // Syncs a segment that stops being active, its zero tail cut first.
  Status seal(Segment& seg);
  void zero_loop();

  FileSystem& fs_;
  fs::path dir_;
  uint64_t segment_size_;
  mutable std::shared_mutex mu_;  // guards segments_
  std::map<uint64_t, std::shared_ptr<Segment>> segments_;
  mutable std::mutex health_mu_;
  Status health_;
  std::atomic<uint64_t> syncs_{0};

  // The tail buffer (append_deferred): bytes of the active segment `tail_seg_`
  // at [tail_off_, tail_off_ + tail_.size()) not written yet; every byte from
  // unwritten_ (a log position, UINT64_MAX when none) up is unwritten or
  // being written. tail_mu_ is taken with no other lock of the log held.
  std::mutex tail_write_mu_;  // one write_tail() at a time
  std::mutex tail_mu_;
  std::string tail_;
  std::shared_ptr<Segment> tail_seg_;
  uint64_t tail_off_ = 0;
  std::atomic<uint64_t> unwritten_{UINT64_MAX};

  std::mutex zero_mu_;  // taken without mu_ held, never the other way round
  std::condition_variable zero_cv_;
  std::thread zeroer_;
  uint64_t ahead_ = 0;               // 0: no preallocation
  bool stop_zero_ = false;
  const Segment* zeroing_ = nullptr;  // being zeroed from zeroing_from_ up
  uint64_t zeroing_from_ = 0;
  bool big_syncs_ = false;  // fdatasyncs lately covered kBigSync or more each: no zeros
  std::atomic<uint64_t> zeroed_bytes_{0};
  std::atomic<uint64_t> zero_failures_{0};
};

}  // namespace mq::storage

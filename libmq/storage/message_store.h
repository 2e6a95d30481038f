// MessageStore: the broker's durable storage. One append-only commit log shared
// by all topics (segment files), one queue index per (topic, queue), a flusher
// (group commit or interval), recovery, retention. See mq-data(5).
//
// Threading: every public member is thread-safe. Appends are serialised
// internally; reads run concurrently with appends. Callbacks run on the store's
// flusher thread or the caller's thread: post back to your executor, never
// block in them.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "storage/record.h"
#include "util/parse.h"
#include "util/status.h"

namespace mq::storage {

namespace fs = std::filesystem;
class FileSystem;  // storage/file_system.h: the I/O seam (real files, or a fault-injecting fake in tests)

enum class FlushMode { sync, async };

struct StoreOptions {
  fs::path dir;
  FlushMode flush = FlushMode::sync;
  Millis flush_interval{500};
  // Flush sync: an append whose covering fdatasync has not completed this long
  // after the append is answered with timeout (see append()); 0 = wait forever.
  Millis flush_timeout{5000};
  uint64_t segment_size = 1ull << 30;
  // Zeros kept written and synced past the log end, so that a group commit's
  // fdatasync need not also write a size change (see commit_log.h); 0 = none.
  uint64_t preallocate = 8u << 20;
  // Rounds go to the round runner (set_round_runner) only while fdatasyncs
  // take less than this: a stalling disk then holds up the flusher alone.
  std::chrono::microseconds runner_max_sync{2000};
  Millis retention{72ll * 3600 * 1000};
  // Retention is enforced this long after open (the broker: a second, so that a broker
  // that was down for long deletes what is old at once), then once a minute.
  Millis retention_first{60000};
  // nullptr: real POSIX files. Not owned; must outlive the store.
  FileSystem* fs = nullptr;
  // Told every few seconds while open() scans the log after an unclean stop
  // (bytes scanned so far, bytes to scan), on the opening thread.
  std::function<void(uint64_t scanned, uint64_t total)> on_recovery_progress;
  Millis recovery_progress_every{2000};
  // Told after retention deleted segments (on the maintenance thread): how many, their
  // bytes, where the log starts now and the store time of its oldest record then.
  struct RetentionReport {
    size_t segments = 0;
    uint64_t bytes = 0;
    uint64_t log_start = 0;
    int64_t oldest_store_ms = 0;
  };
  std::function<void(const RetentionReport&)> on_retention;
};

struct RecoveryReport {
  bool clean = false;            // the previous stop was clean: nothing was scanned
  uint64_t log_start = 0;        // first byte still stored (after retention)
  uint64_t log_end = 0;          // end of the log after recovery
  uint64_t scanned_bytes = 0;    // bytes checked by CRC during recovery
  uint64_t records_scanned = 0;
  uint64_t bytes_cut = 0;        // torn / corrupt tail removed
  std::string cut_reason;        // e.g. "record checksum mismatch at 5120"; empty when nothing cut
  uint64_t index_entries_rebuilt = 0;
  uint64_t index_entries_dropped = 0;
  double seconds = 0;
  std::string checkpoint_unwritten;  // the disk is full: opened without a checkpoint (why)
};

struct Appended {
  uint32_t queue;
  uint64_t offset;
};

// Counters since open, for diagnostics and `make bench` (group commit: records / log_syncs).
struct StoreStats {
  uint64_t appends = 0;    // append() batches written
  uint64_t records = 0;    // records written by append() and append_raw()
  uint64_t log_syncs = 0;  // fdatasyncs of commit log segments (group commits, rolls, close, replication)
  uint64_t flush_timeouts = 0;  // appends answered timeout: their fdatasync took over flush_timeout
  uint64_t preallocated_bytes = 0;  // zeros written ahead of the log end (StoreOptions::preallocate)
  uint64_t preallocation_failures = 0;  // rounds of them that failed (disk full): appends grow the file
};

struct QueueInfo {
  uint64_t min_offset = 0;   // first offset still stored
  uint64_t max_offset = 0;   // next offset to be assigned among visible ones (= count ever written)
  int64_t newest_store_ms = 0;  // store time of the newest visible message, 0 if none
  // Bytes of the stored records of this queue (approximate after retention).
  // Open does not read whole indexes: until the store's background count
  // after open finished (at the latest when enforce_retention returns), only
  // the records stored since open are in it.
  uint64_t bytes = 0;
};

struct ReadResult {
  std::string records;       // concatenated encoded records, CRC-verified, in offset order
  uint32_t count = 0;
  uint64_t next_offset = 0;  // where the next read should start (past filtered-out records too)
  uint64_t min_offset = 0;
  uint64_t max_offset = 0;
};

class MessageStore {
 public:
  // Opens (creating if needed) the store in options.dir and recovers it. The
  // caller holds the directory lock (util/file.h DirLock). A clean previous
  // stop is trusted (fast start); otherwise the log is scanned from the last
  // checkpoint: the first record that is torn or fails its checksum ends the
  // log (everything after it, in later segments too, is cut), and queue index
  // entries are rebuilt or dropped to match. `report` tells what was done.
  static Result<std::unique_ptr<MessageStore>> open(const StoreOptions& options,
                                                    RecoveryReport* report = nullptr);
  virtual ~MessageStore() = default;

  using AppendCallback = std::function<void(Status, std::vector<Appended>)>;
  // Appends `batch`: one or more encoded records back to back, as a client
  // sent them. Each record's topic and queue fields say where it goes; the
  // store assigns the next offset of that queue and the store time, recomputes
  // the CRC and writes the batch with one write. Records that do not parse
  // fail the whole batch with invalid_argument and nothing is written.
  // `done` runs exactly once: with flush sync after an fdatasync covered the
  // batch (concurrent appends share one fdatasync), with flush async right
  // after the write. With flush sync, when that fdatasync has not completed
  // flush_timeout after the write, `done` runs then (on the store's watchdog
  // thread) with a timeout Status and the placed offsets: the batch is
  // written (page cache) and keeps its offsets, but is not known to be
  // durable; it becomes visible only once an fdatasync covers it, and is lost
  // like any unsynced write if that fdatasync fails. On error (disk_full, io_error, or a log poisoned by an
  // earlier fdatasync failure) nothing of the batch is visible or kept and the
  // queue offsets are not consumed.
  // checked: the caller ran decode_record over every record of `batch` (the broker
  // does, to answer a damaged one with CORRUPT_RECORD): their lengths are checked
  // again, their checksums not a second time.
  virtual void append(std::string batch, AppendCallback done, bool checked = false) = 0;
  // Flush sync: where the append that completes the expected group (or a lone
  // appender's append) sends that group's round, its fdatasync and its
  // answers, instead of waking the flusher thread: `runner` is called with
  // no lock held and must run the function later, on a thread of its own
  // (the broker posts it to its io threads, so the round runs after the
  // requests they already read, which then join it). Without a runner, while
  // fdatasyncs take StoreOptions::runner_max_sync or more, or while answering
  // a group takes longer than its fdatasync, the flusher runs every round.
  virtual void set_round_runner(std::function<void(std::function<void()>)> runner) = 0;

  // Reads visible records of (topic, queue) from `offset`: at most max_msgs
  // records and about max_bytes (always at least one record when one is
  // there). An offset below the queue's min starts at min; at or past max the
  // result is empty. When tag_hashes is not empty, records whose tag hash is
  // not in it are skipped (next_offset still moves past them). Visible means:
  // with flush sync, covered by a completed fdatasync; with async, written.
  virtual Result<ReadResult> read(std::string_view topic, uint32_t queue, uint64_t offset,
                                  uint32_t max_msgs, uint32_t max_bytes,
                                  std::span<const uint32_t> tag_hashes = {}) const = 0;

  virtual QueueInfo queue_info(std::string_view topic, uint32_t queue) const = 0;
  // Every (topic, queue) that has an index, sorted.
  virtual std::vector<std::pair<std::string, uint32_t>> queues() const = 0;
  // The first offset whose store time is >= ms (binary search on the index);
  // max_offset when none is.
  virtual Result<uint64_t> offset_for_time(std::string_view topic, uint32_t queue, int64_t ms) const = 0;

  // Called (on any thread) every time new records become visible. One listener.
  virtual void set_visible_listener(std::function<void()> listener) = 0;

  // Log positions, for replication and diagnostics.
  virtual uint64_t log_start() const = 0;
  virtual uint64_t log_end() const = 0;      // written
  virtual uint64_t durable_end() const = 0;  // covered by fdatasync
  // Raw log bytes from `pos` (whole records only, at most max_bytes unless the
  // first record is larger), up to the visible end.
  virtual Result<std::string> read_log(uint64_t pos, size_t max_bytes) const = 0;

  // Replication (slave side). Appends raw log bytes `records` (whole encoded
  // records as the master's read_log(pos) returned them) at exactly `pos`,
  // which must equal log_end(): offsets, store times and bytes stay the
  // master's, so the log is byte-identical. `new_segment`: pos starts a
  // segment on the master (the slave rolls there too, and only there). Each
  // record is checked (CRC, queue offset = the queue's next offset), index
  // entries are written, and the bytes are fdatasync'd before this returns:
  // on OK they are durable and visible. Serialised with append().
  virtual Status append_raw(uint64_t pos, std::string_view records, bool new_segment) = 0;
  // Replication into a store that holds no record (holds_no_record()) from a
  // master whose retention deleted its log's start: the log starts at `pos`
  // instead of where it starts now (0, or where an earlier start_log_at put it). A
  // new queue's first record then sets where the queue starts (its offsets below
  // are gone on the master too). invalid when the store holds a record.
  virtual Status start_log_at(uint64_t pos) = 0;
  // Replication into a store whose log starts past 0 (start_log_at): a queue of
  // which the master keeps no record any more (retention deleted them all) gets
  // the master's next offset `offset`, durably, so that its next record and the
  // consumer offsets committed on the master count on from there (not from 0).
  // A queue holding records here, or counting from `offset` or later, is left
  // alone. invalid when the log starts at 0.
  virtual Status start_queue_at(std::string_view topic, uint32_t queue, uint64_t offset) = 0;
  // Whether the store holds no record: its log is empty, so no queue has a
  // record stored (a queue may count from past 0, as start_queue_at's do).
  virtual bool holds_no_record() const = 0;
  // Master side: whether a segment starts at `pos` (pos > 0).
  virtual bool segment_starts_at(uint64_t pos) const = 0;
  // What a replica and its master compare to know they hold one log: the CRC32C of the
  // log bytes [from, to), which must lie in one segment below the visible end
  // (not_found otherwise). log_tail_digest gives the range that ends at `end`: at most
  // max_bytes, from the start of the segment holding the byte before `end` at the earliest.
  virtual Result<uint32_t> log_digest(uint64_t from, uint64_t to) const = 0;
  virtual Result<std::pair<uint64_t, uint32_t>> log_tail_digest(uint64_t end, size_t max_bytes) const = 0;
  // A replica's log belongs to its master: append() fails with unavailable
  // while this is on (append_raw is unaffected).
  virtual void set_replica(bool replica) = 0;

  // Deletes segments whose newest record is older than now - retention (never
  // the active one); queue mins follow, and the index entries below them are
  // freed from the disk (queue_index.h). Also run by the store's own timer.
  virtual void enforce_retention(int64_t now_ms) = 0;
  // Non-OK once an fdatasync has failed: the log is poisoned, appends fail.
  virtual Status health() const = 0;
  virtual StoreStats stats() const = 0;
  // Waits for pending appends, flushes log and indexes, writes the clean
  // checkpoint. Appends after close fail. Idempotent.
  virtual Status close() = 0;
};

}  // namespace mq::storage

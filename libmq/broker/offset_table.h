// Committed consumer offsets: one per (group, topic, queue), with an epoch
// that every admin reset bumps so a running member's stale commit cannot undo
// a reset (compare-and-set). Persisted to DIR/offsets.json by atomic replace.
//
// Durability: commit() changes memory; persist() writes the file. The broker
// persists at most every 200 ms and at shutdown, so a kill -9 of the broker
// can lose the last 200 ms of commits — which redelivers (at-least-once),
// never skips. Thread-safe.
#pragma once

#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "protocol/group_messages.h"
#include "protocol/replication_messages.h"
#include "util/status.h"

namespace mq::broker {

class OffsetTable {
 public:
  struct Entry {
    int64_t offset = -1;  // -1: the group has no offset for this queue
    uint32_t epoch = 0;
  };

  // Loads `file` if it exists (a missing file is an empty table; a corrupt one is an error).
  static Result<std::unique_ptr<OffsetTable>> open(std::filesystem::path file);

  Entry get(const std::string& group, const protocol::QueueRef& q) const;
  // A member's commit: accepted when `epoch` is the current epoch. init_only: accepted
  // only when the group has no offset for the queue (a new group's --from).
  protocol::CommitResult commit(const std::string& group, const protocol::QueueRef& q, int64_t offset,
                                uint32_t epoch, bool init_only);
  // An admin reset, compare-and-set on the current offset (expected -1 = any).
  // Applied resets bump the epoch. dry_run reports without changing anything.
  protocol::ResetResult reset(const std::string& group, const protocol::QueueRef& q, int64_t expected,
                              int64_t new_offset, bool dry_run);
  // Lowers offsets above `max` to `max` (after recovery cut the log).
  void clamp(const protocol::QueueRef& q, int64_t max);

  std::vector<std::string> groups() const;
  std::vector<protocol::OffsetEntry> entries(const std::string& group) const;
  // The group's entries as the file holds them (as of the last persist): what
  // survives a kill -9, so what administrators are shown. It trails entries()
  // by the commits not yet persisted (and not yet answered).
  std::vector<protocol::OffsetEntry> saved_entries(const std::string& group) const;

  // Writes the file if anything changed since the last write (always: in any case).
  Status persist(bool always = false);
  // open() found no file (a new data directory, or the file was removed).
  bool was_missing() const { return missing_; }

  // Replication (sync_offsets). version() changes with every change of the
  // table (this process only: it starts at 0). snapshot() is every entry, in
  // key order. merge() reconciles each remote entry with the local one (see
  // reconcile) and returns how many entries changed.
  uint64_t version() const;
  std::vector<protocol::GroupOffset> snapshot() const;
  size_t merge(const std::vector<protocol::GroupOffset>& remote);
  // The rule both master and slave apply: a higher epoch wins (an admin reset
  // happened there); with equal epochs the higher offset wins, so offsets
  // committed on either side are kept and nothing is consumed again or skipped.
  static Entry reconcile(Entry local, Entry remote);

 private:
  explicit OffsetTable(std::filesystem::path file) : file_(std::move(file)) {}
  using Key = std::tuple<std::string, std::string, uint32_t>;
  std::filesystem::path file_;
  mutable std::mutex mu_;
  std::mutex persist_mu_;  // one writer of the file at a time (timer, reset, close)
  std::map<Key, Entry> table_;
  std::map<Key, Entry> saved_;  // table_ as of the last successful persist (or the load)
  uint64_t version_ = 0, persisted_version_ = 0;
  bool missing_ = false;
};

// The entries of `local` that would change `remote` under OffsetTable::merge:
// what a slave sends its master (offsets committed on the slave meanwhile).
std::vector<protocol::GroupOffset> offsets_ahead(const std::vector<protocol::GroupOffset>& local,
                                                 const std::vector<protocol::GroupOffset>& remote);

}  // namespace mq::broker

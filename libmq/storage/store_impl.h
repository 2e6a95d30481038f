// The concrete MessageStore (internal: use MessageStore::open). Split over
// store_impl.cc (append, flusher, checkpoints, retention), store_read.cc (reads) and
// recovery.cc (open-time recovery).
//
// Lock order: gate_->mu -> append_mu_ -> state_mu_ -> flush_mu_; deferred_mu_
// is taken with no other store lock or under append_mu_ only. Callbacks and
// the visible listener run with no store lock held (in a round on the runner,
// with only gate_->mu, which close() waits for).
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <shared_mutex>
#include <thread>

#include "storage/commit_log.h"
#include "storage/message_store.h"
#include "storage/queue_index.h"

namespace mq::storage {

// In the data directory after an fdatasync of the log failed with --flush sync: the log
// position it had confirmed, past which the next start cuts the log (mq-data(5)).
inline constexpr const char* kUnconfirmedFile = "unconfirmed";

struct QueueKeyLess {
  using is_transparent = void;
  template <class A, class B>
  bool operator()(const A& a, const B& b) const {
    return std::pair<std::string_view, uint32_t>(a.first, a.second) <
           std::pair<std::string_view, uint32_t>(b.first, b.second);
  }
};

struct QueueState {
  std::string topic;
  uint32_t queue = 0;
  std::shared_ptr<QueueIndex> index;
  // Writers hold append_mu_ and state_mu_ (exclusive); readers state_mu_.
  uint64_t next_offset = 0;  // index entries written (the appender's view)
  uint64_t visible = 0;      // readers see [min_offset, visible)
  uint64_t min_offset = 0;
  uint64_t bytes = 0;        // bytes of visible records from min_offset (see uncounted_end)
  int64_t newest_ms = 0;     // store time of the newest visible record
  // Open reads no index entry it does not need: the records of
  // [min_offset, uncounted_end) are added to `bytes` afterwards by
  // count_open_bytes(). Changed under retention_mu_ and state_mu_.
  uint64_t uncounted_end = 0;
  // Sync flush: the index entries of appends in the log but not yet in the
  // index file, for offsets [deferred_from, ...): the next round writes them
  // (write_deferred). Guarded by StoreImpl::deferred_mu_.
  std::string deferred;
  uint64_t deferred_from = 0;
  std::atomic<bool> dirty{false};     // index written since its last sync
  std::atomic<bool> new_file{false};  // directory entry not yet synced
};

class StoreImpl final : public MessageStore {
 public:
  explicit StoreImpl(const StoreOptions& o);
  ~StoreImpl() override;

  Status start(RecoveryReport& report);  // recovery + threads

  void append(std::string batch, AppendCallback done, bool checked) override;
  Result<ReadResult> read(std::string_view topic, uint32_t queue, uint64_t offset, uint32_t max_msgs,
                          uint32_t max_bytes, std::span<const uint32_t> tag_hashes) const override;
  QueueInfo queue_info(std::string_view topic, uint32_t queue) const override;
  std::vector<std::pair<std::string, uint32_t>> queues() const override;
  Result<uint64_t> offset_for_time(std::string_view topic, uint32_t queue, int64_t ms) const override;
  void set_visible_listener(std::function<void()> listener) override;
  uint64_t log_start() const override { return log_->start(); }
  uint64_t log_end() const override { return log_->end(); }
  uint64_t durable_end() const override { return durable_end_.load(); }
  Result<std::string> read_log(uint64_t pos, size_t max_bytes) const override;
  Status append_raw(uint64_t pos, std::string_view records, bool new_segment) override;
  Status start_log_at(uint64_t pos) override;
  bool holds_no_record() const override;
  Status start_queue_at(std::string_view topic, uint32_t queue, uint64_t offset) override;
  bool segment_starts_at(uint64_t pos) const override;
  Result<uint32_t> log_digest(uint64_t from, uint64_t to) const override;
  Result<std::pair<uint64_t, uint32_t>> log_tail_digest(uint64_t end, size_t max_bytes) const override;
  void set_replica(bool replica) override { replica_ = replica; }
  void enforce_retention(int64_t now_ms) override;
  Status health() const override { return log_->health(); }
  StoreStats stats() const override;
  Status close() override;
  void set_round_runner(std::function<void(std::function<void()>)> runner) override;

 private:
  using QueueMap = std::map<std::pair<std::string, uint32_t>, std::unique_ptr<QueueState>, QueueKeyLess>;
  struct Visibility {
    QueueState* q;
    uint64_t visible;
    int64_t newest_ms;
    uint64_t bytes;
  };
  struct Pending {
    uint64_t end = 0;
    uint64_t seq = 0;  // append order (pending_ is sorted by it)
    std::chrono::steady_clock::time_point at;        // when it was written
    std::chrono::steady_clock::time_point deadline;  // flush_timeout after the write
    AppendCallback done;  // empty once the watchdog answered timeout
    std::vector<Appended> appended;
    std::vector<Visibility> vis;
  };
  struct ScanResult;

  // recovery.cc
  Status recover(RecoveryReport& report);
  Status load_indexes();
  // Rebuilds index entries for the log from `from` (a record boundary) and
  // cuts it at the first torn or corrupt record, or (full) at the first record
  // whose queue offset does not follow. `consistent` false: the indexes did
  // not line up with `from`, or `boundary` (the checkpoint position) is not
  // a record boundary: a full scan is needed.
  Status scan(uint64_t from, bool full, RecoveryReport& report, bool& consistent,
              uint64_t boundary = UINT64_MAX);
  // Whether the newest index entry of all queues is an intact record ending at `end`.
  Result<bool> tail_indexed(uint64_t end);
  Status finish_queue_state(QueueState& q);
  void count_open_bytes();
  // Every queue's state, taken under state_mu_; the pointers stay valid (queues are never removed).
  std::vector<QueueState*> queue_list() const;

  // store_impl.cc, store_read.cc
  Result<QueueState*> queue_for_append(std::string_view topic, uint32_t queue);
  const QueueState* find_queue(std::string_view topic, uint32_t queue) const;
  void apply_visibility(const std::vector<Visibility>& vis);
  void notify_visible();
  void flusher_loop();
  bool sync_round(std::unique_lock<std::mutex>& lk, bool on_runner);
  Status write_deferred();
  // Of every queue's entry count (a clean checkpoint carries it; see Checkpoint).
  uint64_t queues_digest() const;
  bool lead_ok() const;
  void idle();
  void run_posted_round();
  void flush_watch_loop();
  void maintenance_loop();
  Status checkpoint(bool clean);
  uint64_t visible_end() const;

  StoreOptions opt_;
  FileSystem& fs_;
  fs::path index_dir_;
  std::unique_ptr<CommitLog> log_;

  mutable std::shared_mutex state_mu_;
  QueueMap queues_;

  std::atomic<bool> replica_{false};
  std::atomic<uint64_t> appends_{0}, records_{0};
  std::mutex append_mu_;
  int64_t last_store_ms_ = 0;
  bool closed_ = false;

  std::mutex deferred_mu_;
  std::vector<QueueState*> deferred_queues_;  // those with deferred entries

  std::mutex flush_mu_;
  std::condition_variable flush_cv_;
  std::deque<Pending> pending_;
  uint64_t written_end_ = 0;
  bool stop_flusher_ = false;
  size_t wake_at_ = 1;  // appends notify flush_cv_ once pending_ holds this many
  size_t lead_at_ = 1;  // an append that makes pending_ this long sends the round to runner_ (lead_ok)
  bool syncing_ = false;  // a round is running, or posted_
  bool unconfirmed_marked_ = false;  // the unconfirmed file was written (flush_mu_)
  // A read met an index entry that no record can match (the log there is intact, or
  // the entry impossible): checkpoints then make the next start rebuild every entry.
  mutable std::atomic<bool> index_damaged_{false};
  bool posted_ = false;   // a round handed to runner_, not yet started
  bool led_ = false;      // the last round ran on the runner
  bool polling_ = false;  // the flusher looks by itself (led_), waking every kLook
  std::chrono::steady_clock::time_point last_round_;  // when the last round ended
  std::function<void(std::function<void()>)> runner_;
  // What a posted round holds on to: close() clears `store` (waiting for a
  // round that runs), so a round the runner runs later does nothing.
  struct LeadGate {
    std::mutex mu;
    StoreImpl* store = nullptr;
  };
  std::shared_ptr<LeadGate> gate_;
  size_t expect_ = 0;     // appends expected in the next round
  std::chrono::microseconds gather_{0};     // how long the flusher waits for them
  std::chrono::microseconds last_sync_{0};     // the last round's fdatasync
  std::chrono::microseconds last_answers_{0};  // and its callbacks (the answers)
  std::atomic<uint64_t> durable_end_{0};
  std::thread flusher_;
  // Flush timeout watchdog (flush sync with a flush_timeout): answers pending
  // appends whose fdatasync is late. Every pending with seq < watched_seq_ has
  // been answered by it.
  std::condition_variable watch_cv_;
  bool stop_watch_ = false;
  uint64_t next_seq_ = 0, watched_seq_ = 0;
  std::atomic<uint64_t> flush_timeouts_{0};
  std::thread watch_;

  std::mutex maint_mu_;
  std::condition_variable maint_cv_;
  bool stop_maint_ = false;
  std::thread maint_;
  std::mutex ckpt_mu_;
  uint64_t last_ckpt_pos_ = UINT64_MAX;
  bool rebuild_ckpt_written_ = false;  // see index_damaged_
  std::mutex retention_mu_;
  bool bytes_counted_ = false;  // count_open_bytes() finished (retention_mu_)

  std::mutex listener_mu_;
  std::shared_ptr<std::function<void()>> listener_;

  std::mutex close_mu_;
  bool started_ = false;  // recovery finished: only then may close() write a clean checkpoint
  bool close_done_ = false;
  Status close_status_;
};

// A topic name usable as a directory name (the broker validates the full
// syntax; the store refuses anything that could escape the index dir).
bool safe_topic_name(std::string_view topic);

}  // namespace mq::storage

#include "storage/store_impl.h"

#include <algorithm>
#include <chrono>
#include <tuple>

#include "storage/checkpoint.h"
#include "util/bytes.h"
#include "util/thread_name.h"

namespace mq::storage {

namespace {

int64_t now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

constexpr uint64_t kIndexChunk = 512;
// Upper bound of the group commit gathering wait (see flusher_loop).
constexpr std::chrono::microseconds kMaxGather{500};
// While the runner runs the rounds, the flusher looks this often for a group
// that did not complete, and sleeps until woken after this long without one.
constexpr std::chrono::microseconds kLook{250};
constexpr std::chrono::milliseconds kLeadIdle{100};

}  // namespace

bool safe_topic_name(std::string_view t) {
  if (t.empty() || t.size() > 255 || t == "." || t == "..") return false;
  return t.find('/') == std::string_view::npos && t.find('\0') == std::string_view::npos;
}

Result<std::unique_ptr<MessageStore>> MessageStore::open(const StoreOptions& options,
                                                         RecoveryReport* report) {
  if (options.dir.empty()) return Status::invalid("message store: no directory given");
  if (options.segment_size < 4096) return Status::invalid("message store: segment size below 4096");
  auto store = std::make_unique<StoreImpl>(options);
  RecoveryReport local;
  Status s = store->start(report ? *report : local);
  if (!s) return s;
  return std::unique_ptr<MessageStore>(std::move(store));
}

StoreImpl::StoreImpl(const StoreOptions& o)
    : opt_(o), fs_(o.fs ? *o.fs : FileSystem::posix()), index_dir_(o.dir / "index") {}

StoreImpl::~StoreImpl() { (void)close(); }

Status StoreImpl::start(RecoveryReport& report) {
  MQ_RETURN_IF_ERROR(fs_.mkdirs(opt_.dir));
  auto log = CommitLog::open(fs_, opt_.dir / "commitlog", opt_.segment_size);
  if (!log) return log.status();
  log_ = std::move(*log);
  MQ_RETURN_IF_ERROR(recover(report));
  started_ = true;
  gate_ = std::make_shared<LeadGate>();
  gate_->store = this;
  // Zeros ahead only make the fdatasyncs that sync sends wait for cheaper. With
  // --flush async nothing waits for one, and writing them doubled the page-cache
  // writes and held the file's lock against the appends (W1: 35 % slower).
  log_->start_preallocation(opt_.flush == FlushMode::sync ? opt_.preallocate : 0);
  flusher_ = std::thread([this] { flusher_loop(); });
  if (opt_.flush == FlushMode::sync && opt_.flush_timeout.count() > 0)
    watch_ = std::thread([this] { flush_watch_loop(); });
  maint_ = std::thread([this] { maintenance_loop(); });
  return Status::ok();
}

// ---- append ------------------------------------------------------------------

Result<QueueState*> StoreImpl::queue_for_append(std::string_view topic, uint32_t queue) {
  {
    std::shared_lock lk(state_mu_);
    auto it = queues_.find(std::pair<std::string_view, uint32_t>(topic, queue));
    if (it != queues_.end()) return it->second.get();
  }
  fs::path dir = index_dir_ / std::string(topic);
  MQ_RETURN_IF_ERROR(fs_.mkdirs(dir));
  auto idx = QueueIndex::open(fs_, dir / std::to_string(queue), true);
  if (!idx) return idx.status();
  auto q = std::make_unique<QueueState>();
  q->topic = std::string(topic);
  q->queue = queue;
  q->next_offset = q->visible = q->min_offset = (*idx)->initial_count();
  q->index = std::move(*idx);
  q->new_file = true;
  QueueState* raw = q.get();
  std::unique_lock lk(state_mu_);
  queues_.emplace(std::make_pair(std::string(topic), queue), std::move(q));
  return raw;
}

void StoreImpl::append(std::string batch, AppendCallback done, bool checked) {
  struct Rec {
    size_t off;
    uint32_t size;
    std::string_view topic;
    uint32_t queue;
    uint32_t tag_hash;
  };
  std::vector<Rec> recs;
  for (size_t pos = 0; pos < batch.size();) {
    RecordView v;
    std::string why;
    auto r = checked ? (view_record(std::string_view(batch).substr(pos), v) ? DecodeResult::ok : DecodeResult::need_more)
                     : decode_record(std::string_view(batch).substr(pos), v, &why);
    if (r != DecodeResult::ok) {
      if (r == DecodeResult::need_more) why = "truncated record";
      return done(Status::invalid(fmt::format("batch record {}: {}", recs.size(), why)), {});
    }
    if (!safe_topic_name(v.topic))
      return done(Status::invalid(fmt::format("batch record {}: bad topic name", recs.size())), {});
    recs.push_back({pos, static_cast<uint32_t>(v.bytes.size()), v.topic, v.queue, tag_hash(v.tag)});
    pos += v.bytes.size();
  }
  if (recs.empty()) return done(Status::invalid("empty batch"), {});

  if (replica_.load())
    return done(Status::unavailable("this broker is a slave: its log is written by its master"), {});
  Pending p;
  Status err;
  bool async = opt_.flush == FlushMode::async;
  std::function<void(std::function<void()>)> run;  // set: this append leads its group's round
  {
    std::lock_guard lk(append_mu_);
    if (closed_) {
      err = Status::unavailable("message store is closed");
    } else if (Status h = log_->health(); !h) {
      err = h;
    } else {
      int64_t now = std::max(now_ms(), last_store_ms_);
      // Offsets: per queue, in batch order, from the queue's next offset.
      std::vector<std::pair<QueueState*, uint64_t>> next;  // queue -> next offset in this batch
      std::vector<size_t> rk(recs.size());  // record -> index into `next`
      for (size_t i = 0; i < recs.size(); ++i) {
        auto q = queue_for_append(recs[i].topic, recs[i].queue);
        if (!q) {
          err = q.status();
          break;
        }
        auto it = std::find_if(next.begin(), next.end(), [&](auto& e) { return e.first == *q; });
        if (it == next.end()) it = next.insert(next.end(), {*q, (*q)->next_offset});
        rk[i] = static_cast<size_t>(it - next.begin());
        uint64_t off = it->second++;
        stamp_record(batch.data() + recs[i].off, recs[i].queue, off, now);
        p.appended.push_back({recs[i].queue, off});
      }
      // Segments are contiguous (a roll starts the new segment at the old
      // end), so the batch lands at the current end whether it rolls or not.
      uint64_t base = log_->end();
      std::vector<std::string> entries(next.size());
      std::vector<uint64_t> qbytes(next.size(), 0);
      std::vector<bool> direct(next.size(), async);  // entries written here, not by the round
      if (err.is_ok()) {
        uint64_t pos = base;
        for (size_t i = 0; i < recs.size(); ++i) {
          char e[kIndexEntrySize];
          encode_index_entry({pos, recs[i].size, recs[i].tag_hash, now}, e);
          entries[rk[i]].append(e, sizeof e);
          qbytes[rk[i]] += recs[i].size;
          pos += recs[i].size;
        }
        // Sync flush: the round that makes these records durable writes
        // their entries, one write per queue for the whole group, into space
        // reserved here, so that only an I/O error can fail it. Async flush
        // (the records are visible at once), or where space cannot be
        // reserved: index entries first (derived data: beyond next_offset
        // they are invisible, overwritten by the next append or dropped by
        // recovery), then the log.
        for (size_t k = 0; k < next.size() && err.is_ok(); ++k) {
          QueueState* q = next[k].first;
          if (!direct[k]) {
            auto r = q->index->reserve(q->next_offset, next[k].second);
            if (!r)
              err = r.status();
            else
              direct[k] = !*r;
          }
          if (err.is_ok() && direct[k]) {
            err = q->index->write(q->next_offset, entries[k]);
            q->dirty = true;
          }
        }
      }
      if (err.is_ok()) {
        // Sync flush: the round writes it (nobody reads it before).
        auto pos = async ? log_->append(batch, now) : log_->append_deferred(batch, now);
        if (!pos) {
          err = pos.status();
        } else if (*pos != base) {
          err = Status::io_error(fmt::format("commit log: batch landed at {} not {}", *pos, base));
          log_->poison(err);
        }
      }
      if (!err.is_ok()) {
        // (Only what was written: below next_offset a deferred queue's file
        // may still miss entries, whose reserved space a truncate would free.)
        for (size_t k = 0; k < next.size(); ++k)
          if (direct[k]) (void)next[k].first->index->truncate(next[k].first->next_offset);
      } else {
        if (std::find(direct.begin(), direct.end(), false) != direct.end()) {
          std::lock_guard dl(deferred_mu_);
          for (size_t k = 0; k < next.size(); ++k) {
            QueueState* q = next[k].first;
            if (direct[k]) continue;
            if (q->deferred.empty()) {
              q->deferred_from = q->next_offset;
              deferred_queues_.push_back(q);
            }
            q->deferred += entries[k];
          }
        }
        last_store_ms_ = now;
        appends_.fetch_add(1, std::memory_order_relaxed);
        records_.fetch_add(recs.size(), std::memory_order_relaxed);
        uint64_t end = base + batch.size();
        {
          std::unique_lock lk2(state_mu_);
          for (size_t k = 0; k < next.size(); ++k) {
            next[k].first->next_offset = next[k].second;
            p.vis.push_back({next[k].first, next[k].second, now, qbytes[k]});
          }
        }
        p.end = end;
        if (async) {
          apply_visibility(p.vis);
          std::lock_guard fl(flush_mu_);
          written_end_ = end;
        } else {
          p.done = std::move(done);
          p.at = std::chrono::steady_clock::now();
          p.deadline = p.at + opt_.flush_timeout;
          std::lock_guard fl(flush_mu_);
          written_end_ = end;
          p.seq = next_seq_++;
          pending_.push_back(std::move(p));
          // Only when the flusher waits for this many: a wake-up per append
          // while it gathers would cost every round a context switch per producer.
          if (pending_.size() >= lead_at_ && lead_ok()) {
            run = runner_;  // the round goes there (below, with no lock held)
            posted_ = syncing_ = true;
            wake_at_ = lead_at_ = SIZE_MAX;
          } else if (pending_.size() >= wake_at_) {
            flush_cv_.notify_one();
          }
        }
      }
    }
  }
  if (!err.is_ok()) return done(err, {});
  if (async) {
    notify_visible();
    done(Status::ok(), std::move(p.appended));
  }
  if (run) {
    run([gate = gate_] {
      std::lock_guard g(gate->mu);
      if (gate->store) gate->store->run_posted_round();
    });
  }
}

void StoreImpl::set_round_runner(std::function<void(std::function<void()>)> runner) {
  std::lock_guard lk(flush_mu_);
  runner_ = std::move(runner);
}

// A round an append handed to the runner; the flusher takes it back when it
// stops before the runner got to it.
void StoreImpl::run_posted_round() {
  std::unique_lock lk(flush_mu_);
  if (!posted_) return;
  posted_ = false;
  (void)sync_round(lk, true);
  // The flusher, unless it looks by itself already, now should (led_), or
  // waits for this round to stop.
  bool wake = !polling_ || stop_flusher_;
  lk.unlock();
  if (wake) flush_cv_.notify_one();
}

Status StoreImpl::append_raw(uint64_t pos, std::string_view records, bool new_segment) {
  if (records.empty()) return Status::ok();
  std::vector<Visibility> vis;
  {
    std::lock_guard lk(append_mu_);
    if (closed_) return Status::unavailable("message store is closed");
    MQ_RETURN_IF_ERROR(log_->health());
    if (pos != log_->end())
      return Status::invalid(
          fmt::format("replicated bytes at {} but the log ends at {}", pos, log_->end()));
    struct Q {
      QueueState* q;
      uint64_t first;  // where its entries go
      uint64_t next;
      std::string entries;
      uint64_t bytes = 0;
      int64_t newest = 0;
    };
    std::vector<Q> qs;
    int64_t first_ms = 0, last_ms = last_store_ms_;
    uint64_t at = pos;
    for (size_t p = 0; p < records.size();) {
      RecordView v;
      std::string why;
      auto r = decode_record(records.substr(p), v, &why);
      if (r != DecodeResult::ok)
        return Status::corruption(fmt::format("replicated record at {}: {}", at,
                                              r == DecodeResult::need_more ? "truncated" : why));
      if (!safe_topic_name(v.topic))
        return Status::corruption(fmt::format("replicated record at {}: bad topic name", at));
      auto q = queue_for_append(v.topic, v.queue);
      if (!q) return q.status();
      auto it = std::find_if(qs.begin(), qs.end(), [&](auto& e) { return e.q == *q; });
      if (it == qs.end()) {
        // A queue first seen in a log copied from past its master's start: its
        // earlier offsets are gone there too, it starts at this record.
        uint64_t first = (*q)->next_offset;
        if (first == 0 && log_->start() > 0) first = v.offset;
        it = qs.insert(qs.end(), Q{*q, first, first, {}, 0, 0});
      }
      if (v.offset != it->next)
        return Status::corruption(fmt::format("replicated record at {}: {} queue {} offset {}, expected {}",
                                              at, v.topic, v.queue, v.offset, it->next));
      char e[kIndexEntrySize];
      encode_index_entry({at, static_cast<uint32_t>(v.bytes.size()), tag_hash(v.tag), v.store_ms}, e);
      it->entries.append(e, sizeof e);
      it->bytes += v.bytes.size();
      it->newest = std::max(it->newest, v.store_ms);
      ++it->next;
      if (p == 0) first_ms = v.store_ms;
      last_ms = std::max(last_ms, v.store_ms);
      p += v.bytes.size();
      at += v.bytes.size();
    }
    // Entries sync appends left to a round (a master turned slave) go first:
    // the offsets this makes visible lie above them.
    Status err = write_deferred();
    // Index entries first, then the log (as in append()).
    for (auto& q : qs) {
      if (err.is_ok()) err = q.q->index->write(q.first, q.entries);
      q.q->dirty = true;
    }
    if (err.is_ok()) err = log_->append_at(records, pos, new_segment, first_ms);
    if (err.is_ok()) err = log_->sync_active();  // a failure poisons the log
    if (!err.is_ok()) {
      for (auto& q : qs) (void)q.q->index->truncate(q.q->next_offset);
      return err;
    }
    last_store_ms_ = last_ms;
    for (auto& q : qs) records_.fetch_add(q.next - q.first, std::memory_order_relaxed);
    uint64_t end = pos + records.size();
    {
      std::unique_lock lk2(state_mu_);
      for (auto& q : qs) {
        if (q.first != q.q->next_offset) q.q->visible = q.q->min_offset = q.first;
        q.q->next_offset = q.next;
        vis.push_back({q.q, q.next, q.newest, q.bytes});
      }
    }
    {
      std::lock_guard fl(flush_mu_);
      written_end_ = end;
      durable_end_ = end;
    }
    apply_visibility(vis);
  }
  notify_visible();
  return Status::ok();
}

Status StoreImpl::start_log_at(uint64_t pos) {
  std::lock_guard lk(append_mu_);
  if (closed_) return Status::unavailable("message store is closed");
  if (!holds_no_record())
    return Status::invalid(fmt::format("cannot start the log at {}: it holds records", pos));
  MQ_RETURN_IF_ERROR(log_->restart_empty_at(pos));
  {
    std::lock_guard fl(flush_mu_);
    written_end_ = pos;
    durable_end_ = pos;
  }
  return Status::ok();
}

Status StoreImpl::start_queue_at(std::string_view topic, uint32_t queue, uint64_t offset) {
  std::lock_guard lk(append_mu_);
  if (closed_) return Status::unavailable("message store is closed");
  if (!safe_topic_name(topic)) return Status::invalid(fmt::format("bad topic name {}", topic));
  if (log_->start() == 0)
    return Status::invalid(fmt::format("{} queue {}: a queue starts past 0 only in a log that does", topic, queue));
  auto q = queue_for_append(topic, queue);
  if (!q) return q.status();
  // (Writers of next_offset hold append_mu_.)
  if ((*q)->next_offset != (*q)->min_offset || (*q)->next_offset >= offset) return Status::ok();
  // Entries below `offset` read as zeros, below any log position: open and
  // recovery find the queue's min there, at its end.
  MQ_RETURN_IF_ERROR((*q)->index->truncate(offset));
  MQ_RETURN_IF_ERROR((*q)->index->sync());
  MQ_RETURN_IF_ERROR(fs_.sync_dir(index_dir_ / std::string(topic)));
  MQ_RETURN_IF_ERROR(fs_.sync_dir(index_dir_));
  std::unique_lock sl(state_mu_);
  (*q)->next_offset = (*q)->visible = (*q)->min_offset = offset;
  return Status::ok();
}

bool StoreImpl::holds_no_record() const {
  std::shared_lock sl(state_mu_);
  if (log_->start() != log_->end()) return false;
  for (auto& [k, q] : queues_)
    if (q->next_offset != q->min_offset) return false;
  return true;
}

StoreStats StoreImpl::stats() const {
  StoreStats st;
  st.appends = appends_.load(std::memory_order_relaxed);
  st.records = records_.load(std::memory_order_relaxed);
  st.log_syncs = log_ ? log_->syncs() : 0;
  st.flush_timeouts = flush_timeouts_.load(std::memory_order_relaxed);
  st.preallocated_bytes = log_ ? log_->zeroed_bytes() : 0;
  st.preallocation_failures = log_ ? log_->zero_failures() : 0;
  return st;
}

bool StoreImpl::segment_starts_at(uint64_t pos) const {
  if (pos == 0) return false;
  auto seg = log_->next_after(pos - 1);
  return seg && seg->base == pos;
}

void StoreImpl::apply_visibility(const std::vector<Visibility>& vis) {
  std::unique_lock lk(state_mu_);
  for (auto& v : vis) {
    if (v.visible <= v.q->visible) continue;
    v.q->visible = v.visible;
    v.q->newest_ms = std::max(v.q->newest_ms, v.newest_ms);
    v.q->bytes += v.bytes;
  }
}

void StoreImpl::notify_visible() {
  std::shared_ptr<std::function<void()>> l;
  {
    std::lock_guard lk(listener_mu_);
    l = listener_;
  }
  if (l && *l) (*l)();
}

void StoreImpl::set_visible_listener(std::function<void()> listener) {
  std::lock_guard lk(listener_mu_);
  listener_ = std::make_shared<std::function<void()>>(std::move(listener));
}

// ---- flusher -----------------------------------------------------------------

// Between rounds: the first append wakes the flusher, which starts the
// gathering wait (unless the runner ran the last round: then the flusher
// looks by itself, see flusher_loop); the append that completes the
// expected group (or a lone appender's) sends the round to the runner.
void StoreImpl::idle() {
  wake_at_ = led_ ? SIZE_MAX : 1;  // led_: the flusher looks by itself
  lead_at_ = std::max<size_t>(expect_, 1);
}

// A round on the runner's thread saves two wake-ups, but that thread reads
// no requests meanwhile. Worth it while answering a group takes less than
// its fdatasync (few appenders, all in one group: nothing else to read). With
// many, the flusher's rounds overlap with the io threads' answering and
// appending the next group, which then takes more than the fdatasync.
bool StoreImpl::lead_ok() const {
  return runner_ && !syncing_ && !stop_flusher_ && last_sync_ < opt_.runner_max_sync &&
         last_answers_ < last_sync_;
}

// One group commit: an fdatasync covering every append written before it
// starts, then their visibility and answers. Runs on the flusher or on the
// appender that completed the group (lead_ok), one round at a time
// (syncing_). Called and returns with flush_mu_ held; false when the sync
// failed.
bool StoreImpl::sync_round(std::unique_lock<std::mutex>& lk, bool on_runner) {
  syncing_ = true;
  wake_at_ = lead_at_ = SIZE_MAX;  // syncing: appends need not wake anyone, the next round takes them
  uint64_t target = written_end_;
  lk.unlock();
  // Group commit: one fdatasync covers every append that finished its
  // write before `target` was read; later ones wait for the next round.
  Status s = write_deferred();
  auto t0 = std::chrono::steady_clock::now();
  if (s.is_ok()) s = log_->sync_active();
  auto took = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t0);
  lk.lock();
  std::deque<Pending> done;
  if (s.is_ok()) {
    if (target > durable_end_.load()) durable_end_ = target;
    while (!pending_.empty() && pending_.front().end <= target) {
      done.push_back(std::move(pending_.front()));
      pending_.pop_front();
    }
  } else {
    done.swap(pending_);  // poisoned: nobody is told a write is durable
    // After a failed fdatasync the kernel may have dropped those pages and marked them
    // clean: what was written past the last confirmed sync may or may not be on disk,
    // and is cut at the next start (with sync flush nothing past it was acknowledged
    // or visible). Written once, in place: its own sync may fail too (the same disk),
    // and the file then still serves a restart without a power cut.
    if (opt_.flush == FlushMode::sync && !unconfirmed_marked_) {
      unconfirmed_marked_ = true;
      if (auto f = fs_.open(opt_.dir / kUnconfirmedFile, true)) {
        std::string text = std::to_string(durable_end_.load()) + "\n";
        if ((*f)->truncate(0).is_ok() && write_all(**f, text, 0).is_ok()) {
          (void)(*f)->sync();
          (void)fs_.sync_dir(opt_.dir);
        }
      }
    }
  }
  // Those acked now come back, those that arrived meanwhile are waiting.
  expect_ = done.size() + pending_.size();
  gather_ = std::min(took / 2, kMaxGather);
  last_sync_ = took;
  lk.unlock();
  bool any = false;
  for (auto& p : done) {
    if (s.is_ok()) {
      apply_visibility(p.vis);
      any = true;
    }
  }
  if (any) notify_visible();  // before the acks: an acked record is already visible
  auto t1 = std::chrono::steady_clock::now();
  for (auto& p : done) {
    if (!p.done) continue;  // answered timeout by the watchdog
    if (s.is_ok())
      p.done(Status::ok(), std::move(p.appended));
    else
      p.done(s, {});
  }
  auto answering = std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - t1);
  lk.lock();
  last_answers_ = answering;
  last_round_ = std::chrono::steady_clock::now();
  led_ = on_runner;
  syncing_ = false;
  idle();
  return s.is_ok();
}

// The index entries appends left to the round, each queue's in one write,
// before its fdatasync: every record below durable_end then has its entry in
// the file, which is what checkpoints rely on. Their space was reserved, so
// only an I/O error fails this: it poisons the log like a failed fdatasync
// (the appends fail; the next start rebuilds the entries from the log).
Status StoreImpl::write_deferred() {
  std::vector<std::tuple<QueueState*, uint64_t, std::string>> work;
  {
    std::lock_guard dl(deferred_mu_);
    if (deferred_queues_.empty()) return Status::ok();
    work.reserve(deferred_queues_.size());
    for (QueueState* q : deferred_queues_) {
      work.emplace_back(q, q->deferred_from, std::move(q->deferred));
      q->deferred.clear();
    }
    deferred_queues_.clear();
  }
  Status err;
  for (auto& [q, from, entries] : work) {
    if (err.is_ok()) err = q->index->write(from, entries);
    q->dirty = true;
  }
  if (!err.is_ok()) log_->poison(err);
  return err;
}

void StoreImpl::flusher_loop() {
  name_this_thread("mq-flusher");
  bool sync_mode = opt_.flush == FlushMode::sync;
  std::unique_lock lk(flush_mu_);
  for (;;) {
    if (sync_mode) {
      if (!syncing_) idle();  // else the runner's round sets it when done
      bool stale = false;
      if (led_ && !stop_flusher_) {
        // The runner runs the rounds: instead of a wake-up per group, look
        // every kLook for a group that did not complete (an appender left,
        // or the runner is no longer worth it).
        polling_ = true;
        flush_cv_.wait_for(lk, kLook, [&] { return stop_flusher_; });
        polling_ = false;
        if (!stop_flusher_) {
          auto now = std::chrono::steady_clock::now();
          if (syncing_ || pending_.empty()) {
            if (!syncing_ && now - last_round_ > kLeadIdle) led_ = false;  // idle: sleep until woken
            continue;
          }
          if (now - pending_.front().at < gather_) continue;
          stale = true;  // its gathering window is over
        }
      }
      flush_cv_.wait(lk, [&] {
        return (posted_ && stop_flusher_) || (!syncing_ && (stop_flusher_ || !pending_.empty() || led_));
      });
      if (posted_ && stop_flusher_) {  // the runner may never get to it
        posted_ = false;
        (void)sync_round(lk, false);
        continue;
      }
      if (pending_.empty() && !stop_flusher_) continue;  // led_: look by itself
      // Gathering: the appenders acked by the last round usually append again
      // within a round trip. Waiting for them (at most half the last
      // fdatasync, at most kMaxGather) lets one fdatasync cover them all,
      // instead of the producers splitting into groups whose rounds
      // alternate. A lone appender (expect <= 1) never waits here.
      if (!stale && expect_ > 1 && gather_.count() > 0 && !stop_flusher_ && pending_.size() < expect_) {
        wake_at_ = lead_at_ = expect_;
        flush_cv_.wait_for(lk, gather_,
                           [&] { return stop_flusher_ || syncing_ || pending_.size() >= expect_; });
        if (syncing_) continue;  // the appender that completed the group runs the round
      }
      wake_at_ = lead_at_ = SIZE_MAX;
    } else {
      flush_cv_.wait_for(lk, opt_.flush_interval, [&] { return stop_flusher_; });
    }
    bool stopping = stop_flusher_;
    if (written_end_ > durable_end_.load() || !pending_.empty()) {
      if (!sync_round(lk, false) && stopping) break;
      continue;
    }
    if (stopping) break;
  }
}

// Answers the appends whose fdatasync is late (flush sync with a timeout).
// The flusher may be stuck inside that fdatasync, hence a thread of its own.
// Deadlines grow with seq, so the first pending not yet answered is the next
// one due; with none, a wake-up every flush_timeout finds an append made just
// after the last look before its deadline (it is at most that old), so no
// append needs to wake this thread.
void StoreImpl::flush_watch_loop() {
  name_this_thread("mq-flush-watch");
  const Status late = Status::timeout(fmt::format(
      "commit log: fdatasync not done within {}", format_duration(opt_.flush_timeout)));
  std::vector<std::pair<AppendCallback, std::vector<Appended>>> due;
  std::unique_lock lk(flush_mu_);
  while (!stop_watch_) {
    auto now = std::chrono::steady_clock::now();
    auto next = now + opt_.flush_timeout;
    if (!pending_.empty()) {
      size_t i = watched_seq_ > pending_.front().seq ? watched_seq_ - pending_.front().seq : 0;
      for (; i < pending_.size(); ++i) {
        Pending& p = pending_[i];
        if (p.deadline > now) {
          next = p.deadline;
          break;
        }
        due.emplace_back(std::move(p.done), std::move(p.appended));
        p.done = nullptr;
        watched_seq_ = p.seq + 1;
      }
    }
    if (!due.empty()) {
      flush_timeouts_.fetch_add(due.size(), std::memory_order_relaxed);
      lk.unlock();
      for (auto& [done, appended] : due) done(late, std::move(appended));
      due.clear();
      lk.lock();
      continue;
    }
    watch_cv_.wait_until(lk, next, [&] { return stop_watch_; });
  }
}

// ---- checkpoints and retention -------------------------------------------------

void StoreImpl::maintenance_loop() {
  name_this_thread("mq-maint");
  {
    std::lock_guard rl(retention_mu_);
    count_open_bytes();  // what open() left out to start fast
  }
  // The first round opt_.retention_first after the start, then once a minute.
  auto last_retention = std::chrono::steady_clock::now() - std::chrono::seconds(60) + opt_.retention_first;
  std::unique_lock lk(maint_mu_);
  while (!stop_maint_) {
    maint_cv_.wait_for(lk, std::chrono::seconds(1), [&] { return stop_maint_; });
    if (stop_maint_) break;
    lk.unlock();
    (void)checkpoint(false);  // a failure keeps the previous checkpoint: recovery scans more
    if (std::chrono::steady_clock::now() - last_retention > std::chrono::seconds(60)) {
      last_retention = std::chrono::steady_clock::now();
      enforce_retention(now_ms());
    }
    lk.lock();
  }
}

Status StoreImpl::checkpoint(bool clean) {
  std::lock_guard ck(ckpt_mu_);
  // Every record below durable_end has its index entry written (entries are
  // written before the log, or with sync flush by the round before its
  // fdatasync), so once the index files are synced, recovery may start
  // scanning there.
  uint64_t pos = durable_end_.load();
  auto qs = queue_list();
  bool changed = false;
  std::vector<std::string> new_dirs;
  for (auto* q : qs) {
    if (q->new_file.exchange(false)) {
      new_dirs.push_back(q->topic);
      changed = true;
    }
    if (q->dirty.exchange(false)) {
      changed = true;
      Status s = q->index->sync();
      if (!s) {
        q->dirty = true;
        return s;
      }
    }
  }
  std::sort(new_dirs.begin(), new_dirs.end());
  new_dirs.erase(std::unique(new_dirs.begin(), new_dirs.end()), new_dirs.end());
  for (auto& t : new_dirs) MQ_RETURN_IF_ERROR(fs_.sync_dir(index_dir_ / t));
  if (!new_dirs.empty()) {
    MQ_RETURN_IF_ERROR(fs_.sync_dir(index_dir_));
    MQ_RETURN_IF_ERROR(fs_.sync_dir(opt_.dir));
  }
  if (index_damaged_.load(std::memory_order_relaxed)) {
    // Unclean at the log's start: the next start scans the whole log and rewrites every
    // index entry that differs from it (recovery's scan).
    if (rebuild_ckpt_written_) return Status::ok();
    MQ_RETURN_IF_ERROR(write_checkpoint(fs_, opt_.dir / "checkpoint", {log_->start(), false, std::nullopt}));
    rebuild_ckpt_written_ = true;
    return Status::ok();
  }
  if (!clean && !changed && pos == last_ckpt_pos_) return Status::ok();
  Checkpoint c{pos, clean, std::nullopt};
  if (clean) c.queues_digest = queues_digest();
  MQ_RETURN_IF_ERROR(write_checkpoint(fs_, opt_.dir / "checkpoint", c));
  last_ckpt_pos_ = pos;
  return Status::ok();
}

uint64_t StoreImpl::queues_digest() const {
  // FNV-1a over "topic NUL queue NUL next_offset NUL" of every queue, in map order.
  uint64_t h = 1469598103934665603ull;
  auto mix = [&h](std::string_view s) {
    for (unsigned char ch : s) h = (h ^ ch) * 1099511628211ull;
    h = (h ^ 0) * 1099511628211ull;
  };
  std::shared_lock lk(state_mu_);
  for (auto& [k, q] : queues_) {
    mix(q->topic);
    mix(std::to_string(q->queue));
    mix(std::to_string(q->next_offset));
  }
  return h;
}

std::vector<QueueState*> StoreImpl::queue_list() const {
  std::shared_lock lk(state_mu_);
  std::vector<QueueState*> qs;
  qs.reserve(queues_.size());
  for (auto& [k, q] : queues_) qs.push_back(q.get());
  return qs;
}

void StoreImpl::enforce_retention(int64_t now) {
  std::lock_guard rl(retention_mu_);
  count_open_bytes();  // `bytes` must be whole before retention subtracts from it
  int64_t cutoff = now - opt_.retention.count();
  auto segs = log_->segments();
  uint64_t new_start = segs.front()->base;
  // Store times never decrease, so the first record of the next segment is
  // newer than everything in this one.
  for (size_t i = 0; i + 1 < segs.size(); ++i) {
    int64_t next_first = segs[i + 1]->first_store_ms.load();
    if (next_first == 0 || next_first >= cutoff) break;
    new_start = segs[i + 1]->base;
  }
  if (new_start == segs.front()->base) return;
  {
    std::lock_guard lk(append_mu_);  // no roll while segments go
    if (!log_->drop_before(new_start).is_ok()) return;
  }
  if (opt_.on_retention) {
    StoreOptions::RetentionReport rep;
    for (auto& s : segs) {
      if (s->base >= new_start) {
        rep.oldest_store_ms = s->first_store_ms.load();
        break;
      }
      ++rep.segments;
    }
    rep.bytes = new_start - segs.front()->base;
    rep.log_start = new_start;
    opt_.on_retention(rep);
  }
  auto qs = queue_list();
  for (auto* q : qs) {
    uint64_t lo, hi;
    {
      std::shared_lock lk(state_mu_);
      lo = q->min_offset;
      hi = q->visible;
    }
    auto m = q->index->lower_bound_pos(lo, hi, log_->start());
    if (!m || *m == lo) continue;
    uint64_t gone = 0;
    for (uint64_t o = lo; o < *m; o += kIndexChunk) {
      auto es = q->index->read(o, std::min<uint64_t>(kIndexChunk, *m - o));
      if (!es) break;
      for (auto& e : *es) gone += e.size;
    }
    uint64_t min;
    {
      std::unique_lock lk(state_mu_);
      q->min_offset = min = std::max(q->min_offset, *m);
      q->bytes -= std::min(q->bytes, gone);
    }
    // The index follows: its entries below the new min go from the disk
    // (their segments' deletion is durable: drop_before synced the directory).
    // A reader that took the old min finds zeros there, like a deleted segment.
    // A failure keeps the bytes: the next run punches from the same place.
    (void)q->index->trim_before(min);
  }
}

// ---- close ---------------------------------------------------------------------

Status StoreImpl::close() {
  std::lock_guard cl(close_mu_);
  if (close_done_) return close_status_;
  close_done_ = true;
  if (gate_) {
    std::lock_guard g(gate_->mu);  // waits for a round the runner is running
    gate_->store = nullptr;
  }
  {
    std::lock_guard lk(append_mu_);
    closed_ = true;
  }
  {
    std::lock_guard lk(maint_mu_);
    stop_maint_ = true;
  }
  maint_cv_.notify_all();
  if (maint_.joinable()) maint_.join();
  {
    std::lock_guard lk(flush_mu_);
    stop_flusher_ = true;
  }
  flush_cv_.notify_all();
  if (flusher_.joinable()) flusher_.join();
  // After the flusher: appends it is still syncing for may time out meanwhile.
  {
    std::lock_guard lk(flush_mu_);
    stop_watch_ = true;
  }
  watch_cv_.notify_all();
  if (watch_.joinable()) watch_.join();
  if (!log_ || !started_) return close_status_;
  // The zeros past the end go first: a clean stop leaves exactly the log.
  Status z = log_->stop_preallocation();
  Status s = log_->health();
  if (s.is_ok()) s = z;
  if (s.is_ok()) s = write_deferred();  // (the flusher's last round wrote them, unless it failed)
  if (s.is_ok() && durable_end_.load() < log_->end()) {
    s = log_->sync_active();
    if (s.is_ok()) durable_end_ = log_->end();
  }
  if (s.is_ok()) s = checkpoint(true);
  close_status_ = s;
  return s;
}

}  // namespace mq::storage

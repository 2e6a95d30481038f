#include "storage/commit_log.h"

#include <algorithm>
#include <chrono>

#include "storage/record.h"
#include "util/bytes.h"
#include "util/thread_name.h"

namespace mq::storage {

std::string segment_name(uint64_t base) { return fmt::format("{:020}", base); }

namespace {

bool parse_segment_name(const std::string& name, uint64_t& base) {
  if (name.size() != 20 || !std::all_of(name.begin(), name.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return false;
  base = 0;
  for (char c : name) {
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (base > (UINT64_MAX - d) / 10) return false;
    base = base * 10 + d;
  }
  return true;
}

// Store time of the record at the start of a segment, 0 when there is no
// plausible one (recovery decides what is intact; this only feeds retention).
int64_t first_store_ms(const File& f, uint64_t size) {
  if (size < kRecordHeaderSize) return 0;
  char h[kRecordHeaderSize];
  auto r = f.pread(h, sizeof h, 0);
  if (!r || *r != sizeof h || static_cast<uint8_t>(h[kOffMagic]) != kRecordMagic) return 0;
  return static_cast<int64_t>(load_u64(h + kOffStore));
}

}  // namespace

Result<std::unique_ptr<CommitLog>> CommitLog::open(FileSystem& fsys, const fs::path& dir,
                                                   uint64_t segment_size) {
  MQ_RETURN_IF_ERROR(fsys.mkdirs(dir));
  auto names = fsys.list(dir);
  if (!names) return names.status();
  std::unique_ptr<CommitLog> log(new CommitLog(fsys, dir, segment_size));
  for (auto& name : *names) {
    uint64_t base;
    if (!parse_segment_name(name, base)) continue;  // e.g. a leftover temp file
    auto f = fsys.open(dir / name, false);
    if (!f) return f.status();
    auto size = (*f)->size();
    if (!size) return size.status();
    auto seg = std::make_shared<Segment>();
    seg->base = base;
    seg->size = *size;
    seg->first_store_ms = first_store_ms(**f, *size);
    seg->file = std::move(*f);
    log->segments_[base] = std::move(seg);
  }
  // A segment longer than the distance to the next one by zeros only kept
  // preallocated space whose cut at the roll a power loss undid: those zeros
  // were never part of the log (otherwise recovery sees a gap and cuts).
  for (auto it = log->segments_.begin(); it != log->segments_.end() && std::next(it) != log->segments_.end(); ++it) {
    Segment& seg = *it->second;
    uint64_t want = std::next(it)->first - seg.base;
    if (std::next(it)->first <= seg.base || seg.size <= want || seg.size - want > (64u << 20)) continue;
    std::string tail(seg.size - want, '\0');
    if (!read_exact(*seg.file, tail.data(), tail.size(), want).is_ok() ||
        std::any_of(tail.begin(), tail.end(), [](char c) { return c != 0; }))
      continue;  // real bytes: recovery decides
    MQ_RETURN_IF_ERROR(seg.file->truncate(want));
    MQ_RETURN_IF_ERROR(seg.file->sync());
    seg.size = want;
  }
  if (log->segments_.empty()) {
    auto seg = log->create_segment(0);
    if (!seg) return seg.status();
  }
  return log;
}

Result<std::shared_ptr<Segment>> CommitLog::create_segment(uint64_t base) {
  fs::path p = dir_ / segment_name(base);
  auto f = fs_.open(p, true);
  if (!f) return f.status();
  // A file left over from an earlier failed roll may hold bytes: start empty.
  Status s = (*f)->truncate(0);
  if (!s) return s;
  s = fs_.sync_dir(dir_);
  if (!s && s.code() == Code::unavailable) {
    // At the open-file limit the new segment may have taken the last descriptor, so that
    // the directory could not even be opened to be synced (EMFILE; an fsync that failed is
    // an i/o error): nothing was lost, so give the descriptor back and try once more.
    f->reset();
    s = fs_.sync_dir(dir_);
    if (s) {
      f = fs_.open(p, true);
      if (!f) return f.status();  // not rolled: the next append tries again
    }
  }
  if (!s) {
    // Still out of descriptors: this roll fails (the next append tries again); an fsync
    // that failed leaves the directory in doubt, and the log is given up.
    if (s.code() != Code::unavailable) poison(s);
    return s;
  }
  auto seg = std::make_shared<Segment>();
  seg->base = base;
  seg->file = std::move(*f);
  std::unique_lock lk(mu_);
  segments_[base] = seg;
  return seg;
}

namespace {
// The tail buffer is written by the appends themselves beyond this (a round
// that takes long).
constexpr uint64_t kMaxTail = 4u << 20;
// Larger batches are written at once: copying them would cost more than the
// write it saves (a sync producer's message is a few hundred bytes).
constexpr uint64_t kMaxDeferred = 8u << 10;
}  // namespace

Result<uint64_t> CommitLog::append(std::string_view batch, int64_t store_ms) {
  return append_impl(batch, store_ms, false);
}

Result<uint64_t> CommitLog::append_deferred(std::string_view batch, int64_t store_ms) {
  return append_impl(batch, store_ms, true);
}

Result<uint64_t> CommitLog::append_impl(std::string_view batch, int64_t store_ms, bool defer) {
  MQ_RETURN_IF_ERROR(health());
  auto act = active();
  uint64_t n = batch.size();
  if (act->size > 0 && act->size + n > segment_size_) {
    // Roll: the old segment must be durable before appends move on, since
    // the flusher only ever syncs the active segment.
    Status s = write_tail();
    if (s) s = seal(*act);
    if (!s) {
      poison(s);
      return s;
    }
    auto seg = create_segment(act->end());
    if (!seg) return seg.status();
    act = *seg;
  }
  uint64_t off = act->size;
  bool in_zeros = reserve(*act, off, off + n);
  if (defer && in_zeros && n <= kMaxDeferred) {
    bool full;
    {
      std::lock_guard tl(tail_mu_);
      if (tail_.empty()) {
        tail_seg_ = act;
        tail_off_ = off;
        if (unwritten_.load() == UINT64_MAX) unwritten_ = act->base + off;
      }
      tail_ += batch;
      full = tail_.size() >= kMaxTail;
    }
    if (off == 0) act->first_store_ms = store_ms;
    act->size += n;
    // (Rounds write it; this bounds it while an fdatasync takes long.)
    if (full) MQ_RETURN_IF_ERROR(write_tail());
    return act->base + off;
  }
  MQ_RETURN_IF_ERROR(write_tail());  // the file then holds everything before `off`
  Status s = write_all(*act->file, batch, off);
  if (!s) {
    // Never leave a partial batch behind the end: a stale complete record
    // there would come back as a valid one at recovery.
    drop_tail(*act, off);
    return s;
  }
  if (off == 0) act->first_store_ms = store_ms;
  act->size += n;
  return act->base + off;
}

Status CommitLog::append_at(std::string_view batch, uint64_t pos, bool new_segment,
                           int64_t store_ms) {
  MQ_RETURN_IF_ERROR(health());
  MQ_RETURN_IF_ERROR(write_tail());
  auto act = active();
  if (act->end() != pos)
    return Status::invalid(fmt::format("commit log: append at {} but the log ends at {}", pos, act->end()));
  if (new_segment && act->size > 0) {
    Status s = seal(*act);  // as in append(): a rolled segment is durable
    if (!s) {
      poison(s);
      return s;
    }
    auto seg = create_segment(pos);
    if (!seg) return seg.status();
    act = *seg;
  }
  uint64_t off = act->size;
  (void)reserve(*act, off, off + batch.size());
  Status s = write_all(*act->file, batch, off);
  if (!s) {
    drop_tail(*act, off);
    return s;
  }
  if (off == 0) act->first_store_ms = store_ms;
  act->size += batch.size();
  return Status::ok();
}

// ---- preallocation ---------------------------------------------------------------

namespace {
constexpr uint64_t kMaxZeroChunk = 1u << 20;  // zeros written (and synced) per round, at most
constexpr uint64_t kFreshGap = 16u << 10;     // a fresh segment's zeros start this far past the end (at most a round)
constexpr uint64_t kFreshRound = 64u << 10;   // and their first round is this long
// Zeros save per fdatasync (no size change to write) and cost per byte (each is
// written twice): while the log's fdatasyncs cover this much or more each, on average
// over kSyncSample, none are written (pipelined sends: W2 groups of about 85 KiB ran
// 10 % faster without them, sync producers' groups of a few KiB 20-40 % slower).
constexpr uint64_t kBigSync = 48u << 10;
constexpr auto kSyncSample = std::chrono::milliseconds(100);
const std::string& zero_chunk() {
  static const std::string z(kMaxZeroChunk, '\0');
  return z;
}
}  // namespace

bool CommitLog::reserve(Segment& seg, uint64_t off, uint64_t end) {
  if (ahead_ == 0) return false;
  std::unique_lock lk(zero_mu_);
  zero_cv_.wait(lk, [&] { return zeroing_ != &seg || end <= zeroing_from_; });
  seg.reserved = std::max(seg.reserved, end);
  bool in_zeros = off >= seg.zero_start && end <= seg.zeroed;
  // Wake the zeroer only when less than half of `ahead` is left: not per append.
  bool wake = !zeroing_ && !big_syncs_ && !seg.zero_full && seg.zeroed < std::min(segment_size_, end + ahead_ / 2);
  lk.unlock();
  if (wake) zero_cv_.notify_all();
  return in_zeros;
}

Status CommitLog::write_tail() {
  if (unwritten_.load() == UINT64_MAX) return health();
  std::lock_guard wl(tail_write_mu_);
  std::string buf;
  std::shared_ptr<Segment> seg;
  uint64_t off;
  {
    std::lock_guard tl(tail_mu_);
    // Empty: another thread wrote it meanwhile, or failed to (then unwritten_
    // stays, and so does the poison: what it held is not on the disk).
    if (tail_.empty()) return health();
    buf.swap(tail_);
    seg = tail_seg_;
    off = tail_off_;
    tail_off_ = off + buf.size();  // appends meanwhile follow on
  }
  Status s = write_all(*seg->file, buf, off);
  if (!s) {
    // In synced zeros: not a full disk, the device failed. What is unwritten stays so.
    s = s.with_context("commit log");
    poison(s);
    return s;
  }
  std::lock_guard tl(tail_mu_);
  unwritten_ = tail_.empty() ? UINT64_MAX : seg->base + tail_off_;
  if (tail_.empty()) tail_seg_.reset();  // (a segment retention deletes is not kept open)
  return Status::ok();
}

void CommitLog::drop_tail(Segment& seg, uint64_t off) {
  std::unique_lock lk(zero_mu_);
  zero_cv_.wait(lk, [&] { return zeroing_ != &seg; });
  seg.zeroed = 0;  // the zeros past off go with the failed batch
  seg.reserved = off;
  Status t = seg.file->truncate(off);
  if (!t) poison(t.with_context("commit log truncate after failed write"));
}

Status CommitLog::cut_zeros(Segment& seg) {
  {
    std::unique_lock lk(zero_mu_);
    zero_cv_.wait(lk, [&] { return zeroing_ != &seg; });
    if (ahead_ == 0) return Status::ok();
    seg.zeroed = 0;
  }
  // The file size, not `zeroed`: a failed round of zeros may have left some.
  auto fsz = seg.file->size();
  if (!fsz) return fsz.status();
  if (*fsz > seg.size.load()) return seg.file->truncate(seg.size.load());
  return Status::ok();
}

Status CommitLog::seal(Segment& seg) {
  {
    std::lock_guard lk(zero_mu_);
    seg.sealed = true;
  }
  // Only the active segment may end in zeros (recovery relies on it): the
  // cut is made durable by the same fdatasync as the data.
  MQ_RETURN_IF_ERROR(cut_zeros(seg));
  return sync_segment(seg);
}

void CommitLog::start_preallocation(uint64_t ahead) {
  if (ahead == 0 || zeroer_.joinable()) return;
  ahead_ = ahead;
  zeroer_ = std::thread([this] { zero_loop(); });
}

Status CommitLog::stop_preallocation() {
  {
    std::lock_guard lk(zero_mu_);
    stop_zero_ = true;
  }
  zero_cv_.notify_all();
  if (zeroer_.joinable()) zeroer_.join();
  if (ahead_ == 0) return Status::ok();
  MQ_RETURN_IF_ERROR(health());
  MQ_RETURN_IF_ERROR(write_tail());
  auto act = active();
  Status s = cut_zeros(*act);
  if (s) s = sync_segment(*act);
  if (!s) poison(s);
  return s;
}

CommitLog::~CommitLog() {
  {
    std::lock_guard lk(zero_mu_);
    stop_zero_ = true;
  }
  zero_cv_.notify_all();
  if (zeroer_.joinable()) zeroer_.join();
}

void CommitLog::zero_loop() {
  name_this_thread("mq-zeroer");
  // An eighth of `ahead` per round (4 KiB to 1 MiB): the appends' next
  // fdatasync may have to write some of these pages too, keep them few.
  const uint64_t chunk = std::clamp<uint64_t>(ahead_ / 8 / 4096 * 4096, 4096, kMaxZeroChunk);
  std::unique_lock lk(zero_mu_);
  std::chrono::steady_clock::time_point backoff{};
  auto sample_at = std::chrono::steady_clock::now();
  uint64_t sample_end = end(), sample_syncs = syncs();
  while (!stop_zero_) {
    auto now = std::chrono::steady_clock::now();
    if (now - sample_at >= kSyncSample) {
      uint64_t e = end(), n = syncs() - sample_syncs;
      // No fdatasync meanwhile (idle): zeros for the next sends.
      big_syncs_ = n > 0 && e > sample_end && (e - sample_end) / n >= kBigSync;
      sample_at = now;
      sample_end = e;
      sample_syncs += n;
    }
    if (big_syncs_) {
      zero_cv_.wait_for(lk, kSyncSample);  // appends do not wake us meanwhile (reserve)
      continue;
    }
    auto seg = active();
    uint64_t live = std::max(seg->reserved, seg->size.load());
    uint64_t from = seg->zeroed;
    uint64_t round = chunk;
    if (from <= live) {
      // Behind: begin further on, so that the next appends need not wait for
      // these zeros (they grow the file up to there, as without them). In a
      // fresh segment (or after a start) a short step and a short first
      // round, so that the zeros are in use soon; when appends overtook them
      // (a burst), a whole round further.
      bool fresh = seg->zeroed == 0;
      from = (live + (fresh ? std::min(kFreshGap, chunk) : chunk) + 4095) / 4096 * 4096;
      if (fresh) round = std::min(chunk, kFreshRound);
    }
    uint64_t to = std::min(segment_size_, live + ahead_);
    bool wait_out = std::chrono::steady_clock::now() < backoff;
    if (from >= to && to == segment_size_) seg->zero_full = true;
    if (seg->sealed || seg->zero_full || !health().is_ok() || wait_out || from >= to) {
      if (wait_out)
        zero_cv_.wait_until(lk, backoff);
      else
        zero_cv_.wait(lk);  // reserve() wakes us when the zeros run short
      continue;
    }
    to = std::min(to, from + round);
    zeroing_ = seg.get();
    zeroing_from_ = from;
    lk.unlock();
    Status s = write_all(*seg->file, std::string_view(zero_chunk()).substr(0, to - from), from);
    bool synced = false;
    if (s) {
      // A failed fdatasync here may have consumed the error of data pages the
      // flusher's next fdatasync would then not see: it poisons the log.
      s = seg->file->sync();
      if (!s) poison(s.with_context("commit log preallocation"));
      synced = s.is_ok();
    } else {
      // Out of space (or another write error): no zeros, the file grows per
      // append as without preallocation; try again later.
      (void)seg->file->truncate(from);
    }
    lk.lock();
    if (synced) {
      if (from != seg->zeroed) seg->zero_start = from;  // not contiguous with the last zeros
      seg->zeroed = to;
      zeroed_bytes_.fetch_add(to - from, std::memory_order_relaxed);
    } else {
      zero_failures_.fetch_add(1, std::memory_order_relaxed);
      backoff = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    }
    zeroing_ = nullptr;
    zero_cv_.notify_all();
  }
}

Status CommitLog::sync_segment(Segment& seg) {
  syncs_.fetch_add(1, std::memory_order_relaxed);
  return seg.file->sync();
}

Status CommitLog::sync_active() {
  MQ_RETURN_IF_ERROR(health());
  MQ_RETURN_IF_ERROR(write_tail());
  auto act = active();
  Status s = sync_segment(*act);
  if (!s) poison(s);
  // Poisoned meanwhile (a write or the zeroer's fdatasync on another thread
  // failed, which may have taken this fdatasync's error): not durable.
  if (s) s = health();
  return s;
}

Status CommitLog::sync_from(uint64_t pos) {
  for (auto& seg : segments()) {
    if (seg->end() < pos) continue;
    Status s = sync_segment(*seg);
    if (!s) {
      poison(s);
      return s;
    }
  }
  return Status::ok();
}

std::shared_ptr<Segment> CommitLog::find(uint64_t pos) const {
  std::shared_lock lk(mu_);
  auto it = segments_.upper_bound(pos);
  if (it == segments_.begin()) return nullptr;
  --it;
  if (pos > it->second->end()) return nullptr;
  return it->second;
}

Status CommitLog::read(uint64_t pos, char* buf, size_t n) const {
  auto seg = find(pos);
  if (!seg || pos + n > seg->end())
    return Status::not_found(fmt::format("commit log: no data at {} (+{})", pos, n));
  if (pos + n > unwritten_.load())  // in the tail buffer: nobody reads those before their round
    return Status::not_found(fmt::format("commit log: {} (+{}) not written yet", pos, n));
  return read_exact(*seg->file, buf, n, pos - seg->base);
}

std::shared_ptr<Segment> CommitLog::active() const {
  std::shared_lock lk(mu_);
  return segments_.rbegin()->second;
}

std::vector<std::shared_ptr<Segment>> CommitLog::segments() const {
  std::shared_lock lk(mu_);
  std::vector<std::shared_ptr<Segment>> out;
  for (auto& [b, s] : segments_) out.push_back(s);
  return out;
}

std::shared_ptr<Segment> CommitLog::next_after(uint64_t pos) const {
  std::shared_lock lk(mu_);
  auto it = segments_.upper_bound(pos);
  return it == segments_.end() ? nullptr : it->second;
}

uint64_t CommitLog::start() const {
  std::shared_lock lk(mu_);
  return segments_.begin()->second->base;
}

uint64_t CommitLog::end() const {
  std::shared_lock lk(mu_);
  return segments_.rbegin()->second->end();
}

Status CommitLog::truncate_to(uint64_t pos) {
  std::vector<std::shared_ptr<Segment>> later;
  std::shared_ptr<Segment> keep;
  {
    std::unique_lock lk(mu_);
    auto it = segments_.upper_bound(pos);
    if (it != segments_.begin()) keep = std::prev(it)->second;
    while (it != segments_.end()) {
      later.push_back(it->second);
      it = segments_.erase(it);
    }
    if (!keep) {  // cut before the first segment: keep an empty one there
      keep = later.front();
      later.erase(later.begin());
      segments_[keep->base] = keep;
    }
  }
  for (auto& seg : later) MQ_RETURN_IF_ERROR(fs_.remove(dir_ / segment_name(seg->base)));
  uint64_t cut = pos > keep->base ? pos - keep->base : 0;
  MQ_RETURN_IF_ERROR(keep->file->truncate(cut));
  keep->size = cut;
  if (cut == 0) keep->first_store_ms = 0;
  MQ_RETURN_IF_ERROR(sync_segment(*keep));
  return fs_.sync_dir(dir_);
}

Status CommitLog::drop_before(uint64_t new_start) {
  std::vector<std::shared_ptr<Segment>> gone;
  {
    std::unique_lock lk(mu_);
    while (segments_.size() > 1 && segments_.begin()->first < new_start) {
      gone.push_back(segments_.begin()->second);
      segments_.erase(segments_.begin());
    }
  }
  if (gone.empty()) return Status::ok();
  for (auto& seg : gone) MQ_RETURN_IF_ERROR(fs_.remove(dir_ / segment_name(seg->base)));
  return fs_.sync_dir(dir_);
}

Status CommitLog::restart_empty_at(uint64_t base) {
  MQ_RETURN_IF_ERROR(health());
  std::shared_ptr<Segment> old;
  {
    std::shared_lock lk(mu_);
    if (segments_.size() != 1 || segments_.begin()->second->size.load() != 0)
      return Status::invalid("the commit log is not empty");
    old = segments_.begin()->second;
  }
  if (old->base == base) return Status::ok();
  // The zeroer writes ahead in the active segment: stopped while it goes.
  bool zeroing = zeroer_.joinable();
  if (zeroing) {
    {
      std::lock_guard lk(zero_mu_);
      stop_zero_ = true;
    }
    zero_cv_.notify_all();
    zeroer_.join();
    std::lock_guard lk(zero_mu_);
    stop_zero_ = false;
  }
  // The old file goes first: a crash in between leaves no segment, and the next
  // open starts an empty log at 0 again (two would leave a gap to cut at).
  // (In memory the old one stays until the new one is there: nobody reads it, the log
  // being empty, but start(), end() and active() always find a segment.)
  Status s = fs_.remove(dir_ / segment_name(old->base));
  if (s) s = fs_.sync_dir(dir_);
  if (s) {
    auto seg = create_segment(base);
    if (!seg) s = seg.status();
  }
  if (s) {
    std::unique_lock lk(mu_);
    segments_.erase(old->base);
  }
  if (!s) {
    poison(s);
    return s;
  }
  if (zeroing) zeroer_ = std::thread([this] { zero_loop(); });
  return Status::ok();
}

Status CommitLog::health() const {
  std::lock_guard lk(health_mu_);
  return health_;
}

void CommitLog::poison(Status why) {
  std::lock_guard lk(health_mu_);
  if (health_.is_ok()) health_ = Status(why.code() == Code::disk_full ? Code::io_error : why.code(),
                                        "commit log poisoned: " + why.message());
}

}  // namespace mq::storage

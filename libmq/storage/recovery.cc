// Open-time recovery of the store: trust a clean checkpoint, otherwise scan
// the log from the last checkpoint, cut it at the first torn or corrupt
// record, and make the queue indexes match the log.
#include <algorithm>
#include <charconv>
#include <chrono>

#include "storage/checkpoint.h"
#include "storage/store_impl.h"
#include "util/bytes.h"

namespace mq::storage {

namespace {

constexpr size_t kScanChunk = 4u << 20;

bool parse_queue_name(const std::string& s, uint32_t& q) {
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), q);
  return ec == std::errc() && p == s.data() + s.size() && !s.empty() && (s == "0" || s[0] != '0');
}

// Per queue, what the scan found.
struct Seen {
  uint64_t first = 0, last = 0;
  bool any = false;
  std::string buf;           // entries not yet written, starting at buf_start
  uint64_t buf_start = 0;
};

// True when the segment holds only zero bytes from `off` to its end: the
// preallocated space past the log's end (see commit_log.h), not damage.
Result<bool> zeros_to_end(const Segment& seg, uint64_t off) {
  std::string buf(1u << 20, '\0');
  uint64_t size = seg.size.load();
  while (off < size) {
    auto r = seg.file->pread(buf.data(), std::min<uint64_t>(buf.size(), size - off), off);
    if (!r) return r.status();
    if (*r == 0) break;
    if (std::any_of(buf.data(), buf.data() + *r, [](char c) { return c != 0; })) return false;
    off += *r;
  }
  return true;
}

// Where the segment's data ends, for what a cut reports: the file's end, less the
// preallocated zeros past the log's end (a zero run of at least 4 KiB at the end;
// a shorter one is taken for the zero bytes a record may end with).
Result<uint64_t> data_extent(const Segment& seg) {
  std::string buf(1u << 20, '\0');
  const uint64_t size = seg.size.load();
  uint64_t end = size;
  while (end > 0) {
    uint64_t n = std::min<uint64_t>(buf.size(), end);
    auto r = seg.file->pread(buf.data(), n, end - n);
    if (!r) return r.status();
    if (*r < n) return size;  // shorter than its size says: count it all
    for (uint64_t i = n; i > 0; --i)
      if (buf[i - 1] != 0) {
        uint64_t last = end - n + i;
        return size - last >= 4096 ? last : size;
      }
    end -= n;
  }
  return size >= 4096 ? 0 : size;
}

}  // namespace

Status StoreImpl::load_indexes() {
  auto topics = fs_.list(index_dir_);
  if (!topics) return topics.status();
  for (auto& t : *topics) {
    if (!safe_topic_name(t) || !fs_.is_dir(index_dir_ / t)) continue;
    auto files = fs_.list(index_dir_ / t);
    if (!files) return files.status();
    for (auto& f : *files) {
      uint32_t q;
      if (!parse_queue_name(f, q)) continue;
      auto idx = QueueIndex::open(fs_, index_dir_ / t / f, false);
      if (!idx) return idx.status();
      auto st = std::make_unique<QueueState>();
      st->topic = t;
      st->queue = q;
      st->next_offset = (*idx)->initial_count();
      st->index = std::move(*idx);
      queues_.emplace(std::make_pair(t, q), std::move(st));
    }
  }
  return Status::ok();
}

Status StoreImpl::scan(uint64_t from, bool full, RecoveryReport& report, bool& consistent,
                       uint64_t boundary) {
  consistent = true;
  bool stop = false;  // inconsistent: a partial scan gives way to a full one
  std::map<QueueState*, Seen> seen;
  auto flush_entries = [&](QueueState* q, Seen& s) -> Status {
    if (s.buf.empty()) return Status::ok();
    Status st = q->index->write_if_changed(s.buf_start, s.buf);
    report.index_entries_rebuilt += s.buf.size() / kIndexEntrySize;
    s.buf.clear();
    return st;
  };
  std::optional<uint64_t> cut;
  std::string reason;
  bool zero_tail = false;  // the cut only drops preallocated zeros
  std::string buf;
  uint64_t prev_end = 0;
  bool have_prev = false;
  // Progress for long scans (a 1 GiB segment takes seconds on a slow disk).
  uint64_t to_scan = 0;
  for (auto& seg : log_->segments())
    if (seg->end() > from) to_scan += seg->end() - std::max(from, seg->base);
  auto next_progress = std::chrono::steady_clock::now() + opt_.recovery_progress_every;
  for (auto& seg : log_->segments()) {
    // Records are dense: a segment that does not start where the previous
    // one ended means lost bytes (a truncated segment): the log ends there.
    bool gap = have_prev && seg->base != prev_end && prev_end >= from;
    uint64_t gap_at = prev_end;
    have_prev = true;
    prev_end = seg->end();
    if (gap) {
      cut = gap_at;
      reason = fmt::format("gap before segment {} (log ends at {})", segment_name(seg->base), *cut);
      break;
    }
    if (seg->end() <= from && seg->base < from) continue;
    uint64_t off = from > seg->base ? from - seg->base : 0;
    uint64_t size = seg->size.load();
    buf.clear();
    uint64_t buf_off = off;  // segment offset of buf[0]
    size_t p = 0;
    while (!cut && !stop && buf_off + p < size) {
      if (p == buf.size() || buf.size() - p < kRecordHeaderSize ||
          buf.size() - p < std::min<uint64_t>(load_u32(buf.data() + p), kMaxRecordSize)) {
        // Refill: keep the unread tail, read the next chunk (big enough for one record).
        buf.erase(0, p);
        buf_off += p;
        p = 0;
        size_t need = buf.size() >= 4 ? std::min<uint64_t>(load_u32(buf.data()), kMaxRecordSize) : 0;
        size_t want = std::min<uint64_t>(std::max(kScanChunk, need), size - buf_off);
        if (opt_.on_recovery_progress && std::chrono::steady_clock::now() >= next_progress) {
          opt_.on_recovery_progress(report.scanned_bytes, to_scan);
          next_progress = std::chrono::steady_clock::now() + opt_.recovery_progress_every;
        }
        if (want > buf.size()) {
          size_t old = buf.size();
          buf.resize(want);
          auto r = seg->file->pread(buf.data() + old, want - old, buf_off + old);
          if (!r) return r.status();
          buf.resize(old + *r);
        }
      }
      RecordView v;
      std::string why;
      auto d = decode_record(std::string_view(buf).substr(p), v, &why);
      uint64_t at = seg->base + buf_off + p;
      if (d == DecodeResult::ok && !safe_topic_name(v.topic)) {
        d = DecodeResult::bad;
        why = "bad topic name";
      }
      if (d != DecodeResult::ok) {
        cut = at;
        reason = d == DecodeResult::need_more ? fmt::format("torn record at {}", at)
                                              : fmt::format("{} at {}", why, at);
        // Zeros up to the end of the last segment are where the log ended.
        if (seg == log_->active()) {
          auto z = zeros_to_end(*seg, buf_off + p);
          if (!z) return z.status();
          zero_tail = *z;
        }
        break;
      }
      if (!full && at < boundary && boundary < at + v.bytes.size()) {
        // The checkpoint names a position inside a record: it cannot vouch
        // for the indexes either (a full scan rebuilds them all anyway).
        consistent = false;
        stop = true;
        break;
      }
      auto qr = queue_for_append(v.topic, v.queue);
      if (!qr) return qr.status();
      QueueState* q = *qr;
      Seen& s = seen[q];
      // Offsets are dense per queue: the first record of a queue continues
      // what its index holds before `from`, each next one follows the last.
      // A CRC-valid record that breaks this (never written so by the store)
      // would leave a gap or a doubled offset: a full scan cuts the log
      // there like at any bad record, a partial one gives way to a full one
      // (before writing an entry where the offset points).
      uint64_t want = s.last + 1;
      if (!s.any) {
        auto before = q->index->lower_bound_pos(0, q->next_offset, from);
        if (!before) return before.status();
        want = *before;
        // Records of a queue whose index is gone, at the start of a log that
        // retention trimmed: nothing tells where they began.
        if (full && q->next_offset == 0 && from > 0) want = v.offset;
      }
      if (v.offset != want) {
        if (!full) {
          consistent = false;
          stop = true;
          break;
        }
        cut = at;
        reason = fmt::format("record of {}/{} at {} has offset {} where {} was expected", v.topic,
                             v.queue, at, v.offset, want);
        break;
      }
      ++report.records_scanned;
      report.scanned_bytes += v.bytes.size();
      if (!s.any) {
        s.any = true;
        s.first = v.offset;
      }
      s.last = v.offset;
      if (!s.buf.empty() && s.buf_start + s.buf.size() / kIndexEntrySize != v.offset)
        MQ_RETURN_IF_ERROR(flush_entries(q, s));
      if (s.buf.empty()) s.buf_start = v.offset;
      char e[kIndexEntrySize];
      encode_index_entry({at, static_cast<uint32_t>(v.bytes.size()), tag_hash(v.tag), v.store_ms}, e);
      s.buf.append(e, sizeof e);
      if (s.buf.size() >= (64u << 10)) MQ_RETURN_IF_ERROR(flush_entries(q, s));
      last_store_ms_ = std::max(last_store_ms_, v.store_ms);
      p += v.bytes.size();
    }
    if (cut || stop) break;
  }
  for (auto& [q, s] : seen) MQ_RETURN_IF_ERROR(flush_entries(q, s));

  if (cut) {
    for (auto& seg : log_->segments()) {  // bytes of data removed (not the preallocated zeros)
      if (zero_tail) break;
      if (seg->base + seg->size.load() <= *cut) continue;
      auto extent = data_extent(*seg);
      if (!extent) return extent.status();
      uint64_t data_end = seg->base + *extent;
      if (data_end > *cut) report.bytes_cut += data_end - std::max(*cut, seg->base);
    }
    if (report.cut_reason.empty() && !zero_tail) report.cut_reason = reason;
    MQ_RETURN_IF_ERROR(log_->truncate_to(*cut));
  }
  // What was scanned may sit in the page cache only (a process crash): make
  // it durable before it counts as stored.
  MQ_RETURN_IF_ERROR(log_->sync_from(from));

  for (auto& [key, qp] : queues_) {
    QueueState* q = qp.get();
    uint64_t on_disk = q->next_offset;  // entries in the file before the scan wrote any
    auto n = q->index->lower_bound_pos(0, on_disk, from);
    if (!n) return n.status();
    uint64_t keep = *n;
    auto it = seen.find(q);
    if (it != seen.end()) {
      if (it->second.first != keep) consistent = false;
      keep = full ? it->second.last + 1 : std::max(keep, it->second.last + 1);
    }
    // Entries past `keep` point at or past the scan start without a record
    // there to back them: stale (a failed append, or a cut tail).
    auto size = q->index->read(keep, 1);
    if (!size) return size.status();
    if (!size->empty()) {
      uint64_t total = on_disk > keep ? on_disk - keep : 0;
      report.index_entries_dropped += total;
      MQ_RETURN_IF_ERROR(q->index->truncate(keep));
    }
    q->next_offset = keep;
  }
  return Status::ok();
}

Status StoreImpl::finish_queue_state(QueueState& q) {
  // Entries below the log start point at deleted segments (or were trimmed
  // to zeros): a binary search, O(log n) entries read.
  auto m = q.index->lower_bound_pos(0, q.next_offset, log_->start());
  if (!m) return m.status();
  q.min_offset = *m;
  q.visible = q.next_offset;
  q.bytes = 0;
  q.newest_ms = 0;
  // Store times never decrease along the log, so the newest entry has the
  // newest time. The byte count needs every entry: count_open_bytes() sums
  // them after open, so a big index does not slow the start.
  if (q.next_offset > q.min_offset) {
    auto e = q.index->get(q.next_offset - 1);
    if (!e) return e.status();
    q.newest_ms = e->store_ms;
  }
  q.uncounted_end = q.next_offset;
  last_store_ms_ = std::max(last_store_ms_, q.newest_ms);
  return Status::ok();
}

void StoreImpl::count_open_bytes() {
  if (bytes_counted_) return;
  auto stopping = [&] {
    std::lock_guard lk(maint_mu_);
    return stop_maint_;
  };
  // Trimming below a min offset that came from the segments found at open:
  // make sure their deletion is durable first, or a power loss could bring
  // back segments whose index entries are gone.
  if (!fs_.sync_dir(log_->dir()).is_ok()) return;
  auto qs = queue_list();
  for (auto* q : qs) {
    uint64_t lo, hi;
    {
      std::shared_lock lk(state_mu_);
      lo = q->min_offset;  // stays: only retention moves it, and we hold retention_mu_
      hi = q->uncounted_end;
    }
    uint64_t sum = 0;
    // Chunks small enough to stay on the heap (no mmap/munmap per chunk: on a
    // VM those page faults and TLB flushes cost more than the reading).
    for (uint64_t o = lo; o < hi; o += 4096) {
      if (stopping()) return;
      auto es = q->index->read(o, std::min<uint64_t>(4096, hi - o));
      if (!es) return;  // bytes stays low; the next retention run tries again
      for (auto& e : *es) sum += e.size;
    }
    // Index files written before trimming existed, or whose trim a power
    // loss undid, shrink here.
    (void)q->index->trim_before(lo);
    std::unique_lock lk(state_mu_);
    q->bytes += sum;
    q->uncounted_end = 0;
  }
  bytes_counted_ = true;
}

Result<bool> StoreImpl::tail_indexed(uint64_t end) {
  const QueueState* newest = nullptr;
  IndexEntry last;
  for (auto& [k, q] : queues_) {
    if (q->next_offset == 0) continue;
    auto es = q->index->read(q->next_offset - 1, 1);
    if (!es) return es.status();
    if (es->size() != 1) return false;
    if (!newest || (*es)[0].log_pos > last.log_pos) {
      newest = q.get();
      last = (*es)[0];
    }
  }
  if (!newest) return end == log_->start();
  if (last.log_pos + last.size != end) return false;
  auto seg = log_->find(last.log_pos);
  if (!seg || last.log_pos + last.size > seg->end()) return false;
  std::string rec(last.size, '\0');
  auto r = seg->file->pread(rec.data(), rec.size(), last.log_pos - seg->base);
  if (!r) return r.status();
  RecordView v;
  return *r == rec.size() && decode_record(rec, v) == DecodeResult::ok && v.bytes.size() == rec.size() &&
         v.topic == newest->topic && v.queue == newest->queue && v.offset == newest->next_offset - 1;
}

Status StoreImpl::recover(RecoveryReport& report) {
  auto t0 = std::chrono::steady_clock::now();
  report = RecoveryReport{};
  std::string why;
  auto ckpt = read_checkpoint(fs_, opt_.dir / "checkpoint", &why);
  bool index_missing = !fs_.is_dir(index_dir_);
  MQ_RETURN_IF_ERROR(fs_.mkdirs(index_dir_));
  MQ_RETURN_IF_ERROR(load_indexes());
  // A sync flush failed before the stop: the log past what it had confirmed is cut
  // (see sync_round); the scan below then drops the index entries that pointed there.
  bool unconfirmed = fs_.exists(opt_.dir / kUnconfirmedFile);
  if (unconfirmed) {
    auto text = read_whole(fs_, opt_.dir / kUnconfirmedFile);
    if (!text) return text.status();
    uint64_t confirmed = 0;
    auto [p, ec] = std::from_chars(text->data(), text->data() + text->size(), confirmed);
    if (ec != std::errc() || p == text->data())
      return Status::corruption(fmt::format("{}: not a log position: remove it to keep the whole log",
                                            (opt_.dir / kUnconfirmedFile).string()));
    if (confirmed < log_->end()) {
      report.bytes_cut += log_->end() - std::max(confirmed, log_->start());
      report.cut_reason = fmt::format("an fdatasync failed before the stop: the log past {} was never confirmed on "
                                      "disk",
                                      confirmed);
      MQ_RETURN_IF_ERROR(log_->truncate_to(std::max(confirmed, log_->start())));
    }
  }
  uint64_t start = log_->start(), end = log_->end();

  if (ckpt && ckpt->clean) {
    // After a clean stop every segment was whole and they were contiguous: a hole
    // means a segment file was removed or cut since. Serving around it would
    // answer reads of those offsets with errors (and a scan would drop everything
    // after it), so the operator decides.
    auto segs = log_->segments();
    for (size_t i = 0; i + 1 < segs.size(); ++i)
      if (segs[i]->end() < segs[i + 1]->base)
        return Status::corruption(fmt::format(
            "commit log: bytes {} to {} are missing (segment {} was removed or cut while the broker was "
            "stopped): restore it, or move the segments from {} on out of commitlog/ to drop them",
            segs[i]->end(), segs[i + 1]->base, segment_name(segs[i]->end()), segment_name(segs[i + 1]->base)));
    // The clean stop saw the log end at log_pos: shorter now means its newest
    // segments were removed or cut. Starting would give their offsets out again.
    if (!unconfirmed && end < ckpt->log_pos)
      return Status::corruption(fmt::format(
          "commit log: bytes {} to {} are missing (the newest segment{} removed or cut while the broker "
          "was stopped): restore {}, or remove {} to start from what is left (the missing messages' offsets "
          "are then given to new ones)",
          end, ckpt->log_pos, segs.empty() ? "s were" : " was", segs.empty() ? "commitlog/" : "it",
          (opt_.dir / "checkpoint").string()));
  }
  bool clean = ckpt && ckpt->clean && !index_missing && ckpt->log_pos == end;
  bool full_scan = false;
  if (clean && ckpt->queues_digest && *ckpt->queues_digest != queues_digest()) {
    // An index file changed after the clean close (shortened, replaced, removed):
    // its entry count cannot be trusted, so every entry is rebuilt from the log.
    report.cut_reason = "the queue indexes changed since the clean stop: rebuilt from the log";
    clean = false;
    full_scan = true;
  }
  if (clean) {
    for (auto& [k, q] : queues_) {  // a partial entry was already dropped by open
      auto n = q->index->lower_bound_pos(0, q->next_offset, end);
      if (!n) return n.status();
      if (*n < q->next_offset) {
        report.index_entries_dropped += q->next_offset - *n;
        MQ_RETURN_IF_ERROR(q->index->truncate(*n));
        q->next_offset = *n;
      }
    }
    // A clean checkpoint is trusted only when the indexes end where the log
    // does, at an intact record; otherwise the log is scanned.
    auto t = tail_indexed(end);
    if (!t) return t.status();
    clean = *t;
  }
  if (clean) {
    report.clean = true;
  } else {
    uint64_t from = start, boundary = UINT64_MAX;
    if (ckpt && !index_missing && !full_scan && ckpt->log_pos >= start && ckpt->log_pos <= end) from = ckpt->log_pos;
    // After an unclean stop the whole active segment is checked, not only what
    // follows the checkpoint: damage to its tail (torn sectors, a bit flip in a
    // record the checkpoint already covers) is cut here instead of being found
    // by a reader later. Segment starts are record boundaries; a checkpoint in
    // an older segment is checked from that segment's start, and must fall on
    // a record boundary.
    auto segs = log_->segments();
    if (!segs.empty()) from = std::min(from, segs.back()->base);
    for (auto& seg : segs)
      if (seg->base < from && from < seg->end()) {
        boundary = from;
        from = seg->base;
      }
    bool consistent = true;
    MQ_RETURN_IF_ERROR(scan(from, from == start, report, consistent, boundary));
    if (!consistent && from != start) {
      // The indexes do not line up with the checkpoint (e.g. an index file
      // lost): rebuild every entry from the whole log.
      MQ_RETURN_IF_ERROR(scan(start, true, report, consistent));
    }
    for (auto& [k, q] : queues_) {
      MQ_RETURN_IF_ERROR(q->index->sync());
      (void)k;
    }
    std::vector<std::string> topics;
    for (auto& [k, q] : queues_) topics.push_back(k.first);
    topics.erase(std::unique(topics.begin(), topics.end()), topics.end());
    for (auto& t : topics) MQ_RETURN_IF_ERROR(fs_.sync_dir(index_dir_ / t));
    MQ_RETURN_IF_ERROR(fs_.sync_dir(index_dir_));
  }
  for (auto& [k, q] : queues_) {
    MQ_RETURN_IF_ERROR(finish_queue_state(*q));
    q->new_file = false;
    q->dirty = false;
  }
  MQ_RETURN_IF_ERROR(fs_.sync_dir(opt_.dir));
  uint64_t e = log_->end();
  written_end_ = e;
  durable_end_ = e;
  // From now on the store is "open": a crash must not trust the clean flag.
  if (Status w = write_checkpoint(fs_, opt_.dir / "checkpoint", {e, false}); !w) {
    if (w.code() != Code::disk_full) return w;
    // A full disk must not keep the broker from serving what it holds (writes are
    // refused until space returns). The clean checkpoint goes (a removal needs no
    // space), so a crash before the next one is written makes the next start scan.
    MQ_RETURN_IF_ERROR(fs_.remove(opt_.dir / "checkpoint"));
    MQ_RETURN_IF_ERROR(fs_.sync_dir(opt_.dir));
    report.checkpoint_unwritten = w.message();
  }
  last_ckpt_pos_ = e;
  if (unconfirmed) {
    MQ_RETURN_IF_ERROR(fs_.remove(opt_.dir / kUnconfirmedFile));
    MQ_RETURN_IF_ERROR(fs_.sync_dir(opt_.dir));
  }
  report.log_start = log_->start();
  report.log_end = e;
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return Status::ok();
}

}  // namespace mq::storage

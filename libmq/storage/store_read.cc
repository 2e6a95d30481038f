// The read side of StoreImpl: queue reads, queue info, time lookups, raw log reads.
#include <algorithm>

#include "storage/store_impl.h"
#include "util/bytes.h"
#include "util/crc32c.h"

namespace mq::storage {

namespace {

constexpr uint64_t kMaxScanEntries = 1u << 16;  // per read, when a tag filter skips records
constexpr uint64_t kIndexChunk = 512;
// A queue's records are interleaved with other queues' in the log: one pread
// may also cover the bytes between two wanted records when that gap is small
// (copying it costs less than another syscall), up to kMaxRunBytes per pread.
constexpr uint64_t kMaxGapBytes = 16u << 10;
constexpr uint64_t kMaxRunBytes = 96u << 10;  // stays below malloc's mmap threshold

}  // namespace

// ---- reads ---------------------------------------------------------------------

const QueueState* StoreImpl::find_queue(std::string_view topic, uint32_t queue) const {
  auto it = queues_.find(std::pair<std::string_view, uint32_t>(topic, queue));
  return it == queues_.end() ? nullptr : it->second.get();
}

uint64_t StoreImpl::visible_end() const {
  return opt_.flush == FlushMode::sync ? durable_end_.load() : log_->end();
}

Result<ReadResult> StoreImpl::read(std::string_view topic, uint32_t queue, uint64_t offset,
                                   uint32_t max_msgs, uint32_t max_bytes,
                                   std::span<const uint32_t> tag_hashes) const {
  ReadResult r;
  std::shared_ptr<QueueIndex> index;
  uint64_t visible;
  {
    std::shared_lock lk(state_mu_);
    const QueueState* q = find_queue(topic, queue);
    if (!q) {
      r.next_offset = offset;
      return r;
    }
    index = q->index;
    r.min_offset = q->min_offset;
    r.max_offset = visible = q->visible;
  }
  uint64_t cur = std::max(offset, r.min_offset);
  r.next_offset = cur;
  if (cur >= visible || max_msgs == 0) return r;

  std::vector<std::pair<uint64_t, IndexEntry>> want;
  uint64_t bytes = 0, scanned = 0;
  bool full = false;
  while (!full && cur < visible && scanned < kMaxScanEntries && want.size() < max_msgs) {
    uint64_t n = std::min<uint64_t>(visible - cur, kIndexChunk);
    if (tag_hashes.empty()) n = std::min<uint64_t>(n, max_msgs - want.size());
    auto es = index->read(cur, n);
    if (!es) return es.status();
    if (es->empty())
      return Status::corruption(fmt::format("queue index {}: missing entry {}", index->path().string(), cur));
    for (auto& e : *es) {
      if (want.size() >= max_msgs || (!want.empty() && bytes + e.size > max_bytes)) {
        full = true;
        break;
      }
      ++scanned;
      if (!tag_hashes.empty() &&
          std::find(tag_hashes.begin(), tag_hashes.end(), e.tag_hash) == tag_hashes.end()) {
        ++cur;
        continue;
      }
      want.emplace_back(cur++, e);
      bytes += e.size;
    }
  }
  r.next_offset = cur;
  r.records.reserve(bytes);
  // Read runs of nearby records (in one segment, small gaps) with one pread
  // each, verify every record.
  for (size_t i = 0; i < want.size();) {
    auto seg = log_->find(want[i].second.log_pos);
    size_t j = i + 1;
    uint64_t start = want[i].second.log_pos;
    uint64_t run_end = start + want[i].second.size;
    while (seg && j < want.size()) {
      uint64_t pos = want[j].second.log_pos, end = pos + want[j].second.size;
      if (pos < run_end || pos - run_end > kMaxGapBytes || end - start > kMaxRunBytes || end > seg->end()) break;
      run_end = end;
      ++j;
    }
    if (!seg || start < log_->start()) {  // deleted by retention meanwhile
      i = j;
      continue;
    }
    std::string buf(run_end - start, '\0');
    Status s = log_->read(start, buf.data(), buf.size());
    if (!s) {
      if (start < log_->start()) {
        i = j;
        continue;
      }
      if (r.count > 0) {  // what was read is served, as above
        r.next_offset = want[i].first;
        return r;
      }
      return s.with_context(fmt::format("queue {}/{} offset {}", topic, queue, want[i].first));
    }
    for (size_t k = i; k < j; ++k) {
      auto& [off, e] = want[k];
      size_t p = e.log_pos - start;
      RecordView v;
      std::string why = "torn record";
      auto d = decode_record(std::string_view(buf).substr(p, e.size), v, &why);
      if (d != DecodeResult::ok || v.bytes.size() != e.size || v.topic != topic || v.queue != queue ||
          v.offset != off) {
        if (d == DecodeResult::ok) why = "record does not match its index entry";
        // An intact record of another place, or an entry no record can have: the index
        // is wrong, not the log (a record that fails its CRC may be damage to the log,
        // which a rebuild would cut at: that is left for the operator).
        if (d == DecodeResult::ok || e.size < kRecordHeaderSize) {
          index_damaged_.store(true, std::memory_order_relaxed);
          why += " (the queue index is damaged, the log is not: it is rebuilt from the log at the next start)";
        }
        // The records before it are served; the next read starts at it and fails.
        if (r.count > 0) {
          r.next_offset = off;
          return r;
        }
        return Status::corruption(
            fmt::format("queue {}/{} offset {}: {} at log position {}", topic, queue, off, why, e.log_pos));
      }
      r.records.append(v.bytes);
      ++r.count;
    }
    i = j;
  }
  return r;
}

QueueInfo StoreImpl::queue_info(std::string_view topic, uint32_t queue) const {
  std::shared_lock lk(state_mu_);
  QueueInfo i;
  if (const QueueState* q = find_queue(topic, queue)) {
    i.min_offset = q->min_offset;
    i.max_offset = q->visible;
    i.newest_store_ms = q->visible > q->min_offset ? q->newest_ms : 0;
    i.bytes = q->bytes;
  }
  return i;
}

std::vector<std::pair<std::string, uint32_t>> StoreImpl::queues() const {
  std::shared_lock lk(state_mu_);
  std::vector<std::pair<std::string, uint32_t>> out;
  for (auto& [k, q] : queues_) out.push_back(k);
  return out;
}

Result<uint64_t> StoreImpl::offset_for_time(std::string_view topic, uint32_t queue, int64_t ms) const {
  std::shared_ptr<QueueIndex> index;
  uint64_t lo, hi;
  {
    std::shared_lock lk(state_mu_);
    const QueueState* q = find_queue(topic, queue);
    if (!q) return uint64_t{0};
    index = q->index;
    lo = q->min_offset;
    hi = q->visible;
  }
  return index->lower_bound_time(lo, hi, ms);
}

Result<uint32_t> StoreImpl::log_digest(uint64_t from, uint64_t to) const {
  if (from >= to || to > visible_end() || from < log_->start())
    return Status::not_found(fmt::format("the log holds no bytes {}..{} (it spans {}..{})", from, to, log_->start(),
                                         visible_end()));
  std::string buf(to - from, '\0');
  MQ_RETURN_IF_ERROR(log_->read(from, buf.data(), buf.size()));  // within one segment, or not_found
  return crc32c(buf);
}

Result<std::pair<uint64_t, uint32_t>> StoreImpl::log_tail_digest(uint64_t end, size_t max_bytes) const {
  if (end == 0 || max_bytes == 0) return Status::invalid("no log bytes to digest");
  auto seg = log_->find(end - 1);
  if (!seg) return Status::not_found(fmt::format("the log holds no byte at {}", end - 1));
  uint64_t from = std::max(seg->base, end > max_bytes ? end - max_bytes : 0);
  auto crc = log_digest(from, end);
  if (!crc) return crc.status();
  return std::pair{from, *crc};
}

Result<std::string> StoreImpl::read_log(uint64_t pos, size_t max_bytes) const {
  uint64_t vis = visible_end();
  if (pos < log_->start())
    return Status::not_found(fmt::format("log position {} is below the log start {}", pos, log_->start()));
  if (pos >= vis) return std::string();
  auto seg = log_->find(pos);
  if (seg && pos == seg->end()) seg = log_->next_after(pos);
  if (!seg || seg->base > pos) return std::string();
  uint64_t avail = std::min(seg->end(), vis) - pos;
  std::string buf(std::min<uint64_t>(avail, std::max<size_t>(max_bytes, kRecordHeaderSize)), '\0');
  MQ_RETURN_IF_ERROR(log_->read(pos, buf.data(), buf.size()));
  size_t p = 0;
  for (;;) {
    RecordView v;
    std::string why;
    auto d = decode_record(std::string_view(buf).substr(p), v, &why);
    if (d == DecodeResult::ok) {
      p += v.bytes.size();
      if (p >= buf.size()) break;
      continue;
    }
    if (d == DecodeResult::need_more && p == 0 && buf.size() >= 4) {
      uint64_t size = load_u32(buf.data());  // one record larger than max_bytes
      if (size > avail)
        return Status::corruption(fmt::format("commit log: torn record at {}", pos));
      buf.resize(size);
      MQ_RETURN_IF_ERROR(log_->read(pos, buf.data(), buf.size()));
      continue;
    }
    if (d == DecodeResult::bad)
      return Status::corruption(fmt::format("commit log: {} at {}", why, pos + p));
    break;  // need_more after whole records: stop there
  }
  buf.resize(p);
  return buf;
}

}  // namespace mq::storage

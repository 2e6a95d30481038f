#include "storage/queue_index.h"

#include <algorithm>

#include "util/bytes.h"

namespace mq::storage {

void encode_index_entry(const IndexEntry& e, char* out) {
  store_u64(out, e.log_pos);
  store_u32(out + 8, e.size);
  store_u32(out + 12, e.tag_hash);
  store_u64(out + 16, static_cast<uint64_t>(e.store_ms));
}

IndexEntry decode_index_entry(const char* in) {
  IndexEntry e;
  e.log_pos = load_u64(in);
  e.size = load_u32(in + 8);
  e.tag_hash = load_u32(in + 12);
  e.store_ms = static_cast<int64_t>(load_u64(in + 16));
  return e;
}

Result<std::unique_ptr<QueueIndex>> QueueIndex::open(FileSystem& fsys, const fs::path& path,
                                                     bool create) {
  auto f = fsys.open(path, create);
  if (!f) return f.status();
  auto size = (*f)->size();
  if (!size) return size.status();
  uint64_t whole = *size / kIndexEntrySize;
  if (*size % kIndexEntrySize != 0) MQ_RETURN_IF_ERROR((*f)->truncate(whole * kIndexEntrySize));
  return std::unique_ptr<QueueIndex>(new QueueIndex(std::move(*f), whole));
}

Status QueueIndex::write(uint64_t offset, std::string_view entries) {
  return write_all(*file_, entries, offset * kIndexEntrySize);
}

Status QueueIndex::write_if_changed(uint64_t offset, std::string_view entries) {
  std::string old(entries.size(), '\0');
  auto r = file_->pread(old.data(), old.size(), offset * kIndexEntrySize);
  if (r && *r == old.size() && std::string_view(old) == entries) return Status::ok();
  return write(offset, entries);
}

Result<std::vector<IndexEntry>> QueueIndex::read(uint64_t offset, uint64_t n) const {
  std::string buf(n * kIndexEntrySize, '\0');
  auto r = file_->pread(buf.data(), buf.size(), offset * kIndexEntrySize);
  if (!r) return r.status();
  std::vector<IndexEntry> out;
  out.reserve(*r / kIndexEntrySize);
  for (size_t i = 0; i + kIndexEntrySize <= *r; i += kIndexEntrySize)
    out.push_back(decode_index_entry(buf.data() + i));
  return out;
}

Result<IndexEntry> QueueIndex::get(uint64_t offset) const {
  char buf[kIndexEntrySize];
  Status s = read_exact(*file_, buf, sizeof buf, offset * kIndexEntrySize);
  if (!s) return s;
  return decode_index_entry(buf);
}

Result<bool> QueueIndex::reserve(uint64_t from, uint64_t to) {
  uint64_t end = to * kIndexEntrySize;
  if (!reserve_ok_) return false;
  if (end <= reserved_) return true;
  // From the block of the first new entry: never below, where retention may
  // have punched the blocks out.
  uint64_t start = std::max(reserved_, from * kIndexEntrySize / kTrimBlock * kTrimBlock);
  uint64_t chunk = std::clamp<uint64_t>(end / 8, kTrimBlock, uint64_t{1} << 20);
  uint64_t upto = (end + chunk + kTrimBlock - 1) / kTrimBlock * kTrimBlock;
  auto r = file_->reserve(start, upto - start);
  if (!r) return r.status();
  if (!*r) {
    reserve_ok_ = false;
    return false;
  }
  reserved_ = upto;
  return true;
}

Status QueueIndex::truncate(uint64_t count) {
  reserved_ = std::min(reserved_, count * kIndexEntrySize);  // the blocks past the size go
  return file_->truncate(count * kIndexEntrySize);
}

Status QueueIndex::trim_before(uint64_t offset) {
  uint64_t end = offset * kIndexEntrySize / kTrimBlock * kTrimBlock;
  if (!punch_ok_ || end <= trimmed_) return Status::ok();
  auto r = file_->punch_hole(trimmed_, end - trimmed_);
  if (!r) return r.status();
  if (!*r) {
    punch_ok_ = false;
    return Status::ok();
  }
  trimmed_ = end;
  return Status::ok();
}

Status QueueIndex::sync() { return file_->sync(); }

template <class Pred>
Result<uint64_t> QueueIndex::lower_bound(uint64_t lo, uint64_t hi, Pred below) const {
  while (lo < hi) {
    uint64_t mid = lo + (hi - lo) / 2;
    auto e = get(mid);
    if (!e) return e.status();
    if (below(*e))
      lo = mid + 1;
    else
      hi = mid;
  }
  return lo;
}

Result<uint64_t> QueueIndex::lower_bound_pos(uint64_t lo, uint64_t hi, uint64_t pos) const {
  return lower_bound(lo, hi, [pos](const IndexEntry& e) { return e.log_pos < pos; });
}

Result<uint64_t> QueueIndex::lower_bound_time(uint64_t lo, uint64_t hi, int64_t ms) const {
  return lower_bound(lo, hi, [ms](const IndexEntry& e) { return e.store_ms < ms; });
}

}  // namespace mq::storage

// The recovery scanner and the store's read path over damaged data. The
// input describes a data directory on the in-memory FaultFileSystem:
//
//   u8 flags, u32 that picks the checkpoint position, then parts separated by "#MQSPLIT":
//   [0] bytes of segment 0   [1] bytes of segment 1 (none when empty)
//   [2] queue index file index/t/0   [3] bytes a master "replicates"   [4] checkpoint text
//   flags: 1 checkpoint (at a record boundary of the intact prefix), 2 it says clean,
//   4 write [2], 8 a gap before segment 1, 16 --flush async, 32 write [4] as the
//   checkpoint, 64 append_raw starts a segment, 128 run retention.
//
// The store is opened (recovery), every queue is read whole, the raw log is
// walked, a record is appended, the replicated bytes are applied with
// append_raw, retention runs, and the store is closed and reopened. Nothing
// may crash. After a scan (an unclean stop) of a log the store could have
// written, every read must succeed and give intact records at dense offsets
// (damage below a checkpoint is trusted like synced data: reads report it).
#include <condition_variable>
#include <map>
#include <mutex>

#include "fuzz_util.h"
#include "storage/checkpoint.h"
#include "storage/commit_log.h"
#include "storage/fault_fs.h"
#include "storage/message_store.h"
#include "storage/store_impl.h"  // safe_topic_name

using namespace mq;
using namespace mq::storage;

namespace {

constexpr std::string_view kSep = "#MQSPLIT";

void put_file(FaultFileSystem& ffs, const fs::path& p, std::string_view data) {
  (void)ffs.mkdirs(p.parent_path());
  auto f = ffs.open(p, true);
  if (!f) return;
  (void)write_all(**f, data, 0);
  (void)(*f)->sync();
  (void)ffs.sync_dir(p.parent_path());
}

Status append_wait(MessageStore& s, std::string batch) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  Status out;
  s.append(std::move(batch), [&](Status st, std::vector<Appended>) {
    std::lock_guard lk(mu);
    out = std::move(st);
    done = true;
    cv.notify_all();
  });
  std::unique_lock lk(mu);
  cv.wait(lk, [&] { return done; });
  return out;
}

// Reads every queue whole. `strict`: reads must succeed with intact records.
void read_all(MessageStore& s, bool strict) {
  for (auto& [topic, q] : s.queues()) {
    auto info = s.queue_info(topic, q);
    MQ_FUZZ_CHECK(info.min_offset <= info.max_offset, "{}/{}: min {} > max {}", topic, q, info.min_offset,
                  info.max_offset);
    uint64_t off = info.min_offset;
    int guard = 0;
    while (off < info.max_offset && guard++ < 10000) {
      auto r = s.read(topic, q, off, 64, 1 << 16);
      if (!r) {
        MQ_FUZZ_CHECK(!strict, "read {}/{} at {} failed after a scan: {}", topic, q, off, r.status().message());
        break;
      }
      std::string_view in = r->records;
      uint32_t n = 0;
      while (!in.empty()) {
        RecordView v;
        MQ_FUZZ_CHECK(decode_record(in, v) == DecodeResult::ok, "store returned a bad record");
        MQ_FUZZ_CHECK(v.topic == topic && v.queue == q, "record of {}/{} in {}/{}", v.topic, v.queue, topic, q);
        if (strict) MQ_FUZZ_CHECK(v.offset == off + n, "offset {} where {} was expected", v.offset, off + n);
        in.remove_prefix(v.bytes.size());
        ++n;
      }
      MQ_FUZZ_CHECK(n == r->count, "count {} but {} records", r->count, n);
      if (strict) MQ_FUZZ_CHECK(n > 0, "empty read at {} below max {}", off, info.max_offset);
      if (r->next_offset <= off) break;
      off = r->next_offset;
    }
    (void)s.offset_for_time(topic, q, 0);
    (void)s.offset_for_time(topic, q, INT64_MAX);
  }
  // The raw log, as a slave would fetch it.
  uint64_t pos = s.log_start();
  int guard = 0;
  while (pos < s.durable_end() && guard++ < 10000) {
    auto r = s.read_log(pos, 1 << 16);
    if (!r) {
      MQ_FUZZ_CHECK(!strict, "read_log at {} failed after a scan: {}", pos, r.status().message());
      break;
    }
    if (r->empty()) {
      auto next = pos;  // a segment end: move to the next segment
      (void)next;
      break;
    }
    std::string_view in = *r;
    while (!in.empty()) {
      RecordView v;
      MQ_FUZZ_CHECK(decode_record(in, v) == DecodeResult::ok, "read_log returned a bad record at {}", pos);
      in.remove_prefix(v.bytes.size());
    }
    pos += r->size();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  if (size > (1u << 20)) return 0;
  fuzz::Steer steer(fuzz::as_view(data, size));
  uint8_t flags = steer.u8();
  uint32_t ckpt_pos = steer.u32();
  auto parts = fuzz::split(steer.rest(), kSep, 5);
  parts.resize(5);

  FaultFileSystem ffs;
  const fs::path dir = "/data";
  (void)ffs.mkdirs(dir / "commitlog");
  put_file(ffs, dir / "commitlog" / segment_name(0), parts[0]);
  if (!parts[1].empty()) {
    uint64_t base = parts[0].size() + ((flags & 8) ? 1 : 0);  // flag 8: a gap before segment 1
    put_file(ffs, dir / "commitlog" / segment_name(base), parts[1]);
  }
  if (flags & 4) put_file(ffs, dir / "index" / "t" / "0", parts[2]);
  if (flags & 32) {
    put_file(ffs, dir / "checkpoint", parts[4]);
  } else if (flags & 1) {
    // The store writes a checkpoint only where every record before it is whole and synced:
    // pick one of the boundaries of the intact prefix of the log.
    std::vector<uint64_t> at{0};
    uint64_t base = 0;
    for (size_t i = 0; i < 2; ++i) {
      std::string_view seg = parts[i];
      size_t p = 0;
      while (p < seg.size()) {
        RecordView v;
        if (decode_record(seg.substr(p), v) != DecodeResult::ok) break;
        p += v.bytes.size();
        at.push_back(base + p);
      }
      if (p != seg.size() || (flags & 8)) break;  // damage or a gap: no checkpoint beyond
      base += seg.size();
    }
    (void)write_checkpoint(ffs, dir / "checkpoint", {at[ckpt_pos % at.size()], (flags & 2) != 0});
  }

  StoreOptions o;
  o.dir = dir;
  o.fs = &ffs;
  o.flush = (flags & 16) ? FlushMode::async : FlushMode::sync;
  o.segment_size = 4096;
  RecoveryReport report;
  auto store = MessageStore::open(o, &report);
  static const bool verbose = std::getenv("MQ_FUZZ_VERBOSE") != nullptr;  // to study an artifact
  if (verbose) {
    for (auto& f : ffs.files()) std::fprintf(stderr, "file %s: %zu bytes\n", f.c_str(), ffs.content(f).size());
    if (!store) std::fprintf(stderr, "open failed: %s\n", store.status().message().c_str());
    else
      std::fprintf(stderr, "recovery: clean=%d start=%lu end=%lu scanned=%lu records=%lu cut=%lu (%s)\n",
                   report.clean, report.log_start, report.log_end, report.scanned_bytes, report.records_scanned,
                   report.bytes_cut, report.cut_reason.c_str());
  }
  if (!store) return 0;
  // An index file from the input below a checkpoint (picked or from the input) is trusted
  // like the log below it (it was synced): damage there shows as read errors, not crashes.
  // Anything else recovery checks: queue offsets that do not follow are cut, a checkpoint
  // inside a record or past the log end is not trusted.
  bool strict = !report.clean && !((flags & 4) && (flags & (1 | 32)));
  MQ_FUZZ_CHECK(report.log_end == (*store)->log_end(), "report end {} vs log end {}", report.log_end,
                (*store)->log_end());
  read_all(**store, strict);

  // The store keeps working after recovery.
  Message m;
  m.topic = "t";
  m.body = "after recovery";
  std::string rec;
  encode_record(m, rec);
  Status st = append_wait(**store, rec);
  if (strict) MQ_FUZZ_CHECK(st.is_ok(), "append after recovery failed: {}", st.message());
  if (!parts[3].empty()) (void)(*store)->append_raw((*store)->log_end(), parts[3], (flags & 64) != 0);
  read_all(**store, strict);
  if (flags & 128) {
    (*store)->enforce_retention(static_cast<int64_t>(ckpt_pos) * 1000);
    read_all(**store, false);
  }
  std::vector<std::pair<std::pair<std::string, uint32_t>, uint64_t>> before;
  for (auto& k : (*store)->queues()) before.push_back({k, (*store)->queue_info(k.first, k.second).max_offset});
  Status closed = (*store)->close();
  store->reset();

  // A clean reopen sees the same queues.
  RecoveryReport again;
  auto reopened = MessageStore::open(o, &again);
  if (!reopened) return 0;
  if (closed.is_ok() && strict) {
    for (auto& [k, max] : before)
      MQ_FUZZ_CHECK((*reopened)->queue_info(k.first, k.second).max_offset == max,
                    "{}/{}: max offset {} before close, {} after reopen", k.first, k.second, max,
                    (*reopened)->queue_info(k.first, k.second).max_offset);
  }
  read_all(**reopened, strict && closed.is_ok());
  (void)(*reopened)->close();
  return 0;
}

// Recovery on real files: torn tails, bit flips, lost or damaged indexes.
#include <catch2/catch.hpp>

#include <fstream>
#include <map>
#include <random>

#include "storage/checkpoint.h"
#include "storage/commit_log.h"
#include "storage/file_system.h"
#include "storage/message_store.h"
#include "storage/store_test_util.h"
#include "util/bytes.h"

using namespace mq;
using namespace mq::storage;
using namespace mq::storage::test;

namespace {

StoreOptions rec_options(const fs::path& dir) {
  StoreOptions o;
  o.dir = dir;
  o.flush = FlushMode::async;
  o.flush_interval = Millis(10);
  o.segment_size = 8192;
  return o;
}

struct LoggedRecord {
  uint64_t start, end;
  uint32_t queue;
  uint64_t offset;
  std::string body;
};

// A data directory left by a store that was not closed (copied while open).
struct Pristine {
  TempDir dir;
  fs::path data;
  std::vector<LoggedRecord> records;  // every record, in log order
  std::vector<uint64_t> bases;  // segment bases, ascending
  uint64_t ckpt_pos = 0;

  Pristine() {
    data = dir.path() / "pristine";
    TempDir live;
    auto o = rec_options(live.path());
    auto s = MessageStore::open(o);
    REQUIRE(s);
    std::mt19937 rng(7);
    for (int i = 0; i < 120; ++i) {
      auto r = append_wait(**s, make_record("t", i % 2, fmt::format("m{}-", i) + std::string(rng() % 250, 'b')));
      REQUIRE(r.status.is_ok());
    }
    fs::copy(live.path(), data, fs::copy_options::recursive);
    REQUIRE((*s)->close().is_ok());
    auto names = FileSystem::posix().list(data / "commitlog");
    REQUIRE(names);
    for (auto& n : *names) {
      auto content = read_whole(FileSystem::posix(), data / "commitlog" / n);
      REQUIRE(content);
      uint64_t base = std::stoull(n);
      std::string_view in = *content;
      uint64_t pos = base;
      while (!in.empty()) {
        RecordView v;
        REQUIRE(decode_record(in, v) == DecodeResult::ok);
        records.push_back({pos, pos + v.bytes.size(), v.queue, v.offset, std::string(v.body)});
        pos += v.bytes.size();
        in.remove_prefix(v.bytes.size());
      }
      bases.push_back(base);
    }
    auto c = read_checkpoint(FileSystem::posix(), data / "checkpoint");
    REQUIRE(c);
    REQUIRE(!c->clean);
    ckpt_pos = c->log_pos;
    REQUIRE(records.size() == 120);
    REQUIRE(bases.size() >= 3);
  }
};

std::vector<std::string> bodies(MessageStore& s, uint32_t q) {
  std::vector<std::string> out;
  auto info = s.queue_info("t", q);
  uint64_t off = info.min_offset;
  while (off < info.max_offset) {
    auto r = s.read("t", q, off, 1000, 1 << 20);
    REQUIRE(r.status().to_string() == "ok");
    auto ms = messages(*r);
    REQUIRE(!ms.empty());
    for (auto& m : ms) {
      REQUIRE(m.offset == off++);
      out.push_back(m.body);
    }
  }
  return out;
}

void damage_file(const fs::path& p, bool truncate, uint64_t at, uint8_t mask) {
  if (truncate) {
    fs::resize_file(p, at);
    return;
  }
  std::fstream f(p, std::ios::in | std::ios::out | std::ios::binary);
  f.seekg(static_cast<std::streamoff>(at));
  char c;
  f.read(&c, 1);
  c = static_cast<char>(static_cast<uint8_t>(c) ^ mask);
  f.seekp(static_cast<std::streamoff>(at));
  f.write(&c, 1);
}

// Rewrites the queue offset of the record at absolute log position `at` (a valid CRC again).
void restamp(const Pristine& p, const fs::path& d, const LoggedRecord& r, uint64_t offset) {
  uint64_t base = *std::prev(std::upper_bound(p.bases.begin(), p.bases.end(), r.start));
  fs::path seg = d / "commitlog" / segment_name(base);
  auto content = read_whole(FileSystem::posix(), seg);
  REQUIRE(content);
  std::string bytes = *content;
  char* rec = bytes.data() + (r.start - base);
  stamp_record(rec, load_u32(rec + kOffQueue), offset, static_cast<int64_t>(load_u64(rec + kOffStore)));
  std::ofstream(seg, std::ios::binary | std::ios::trunc).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

}  // namespace

TEST_CASE("recovery keeps every intact record before a torn or flipped tail and reuses cut offsets once",
          "[storage]") {
  Pristine p;
  uint64_t log_end = p.records.back().end;
  std::mt19937 rng(42);
  for (int trial = 0; trial < 200; ++trial) {
    CAPTURE(trial);
    TempDir work(shm_or_tmp());
    fs::path d = work.path() / "data";
    fs::copy(p.data, d, fs::copy_options::recursive);
    bool truncate = trial % 2 == 0;
    bool drop_ckpt = trial % 3 == 0 || p.ckpt_pos + 100 >= log_end;
    if (drop_ckpt) fs::remove(d / "checkpoint");
    // Damage in the last two segments (a cut in one deletes the later ones).
    uint64_t lo = std::max(p.bases[p.bases.size() - 2], drop_ckpt ? 0 : p.ckpt_pos);
    REQUIRE(lo < log_end);
    uint64_t at = lo + rng() % (log_end - lo);  // absolute damage position
    CAPTURE(truncate, at);
    uint64_t base = *std::prev(std::upper_bound(p.bases.begin(), p.bases.end(), at));
    damage_file(d / "commitlog" / segment_name(base), truncate, at - base,
                static_cast<uint8_t>(1u << (rng() % 8)));

    // What must survive: every record that ends at or before the damage.
    std::map<uint32_t, std::vector<std::string>> expect;
    uint64_t cut_start = log_end;
    for (auto& r : p.records) {
      if (r.end <= at) {
        expect[r.queue].push_back(r.body);
      } else if (cut_start == log_end) {
        cut_start = r.start;
      }
    }
    // A truncated segment loses its tail; the later segments are cut whole.
    uint64_t seg_end = base == p.bases.back() ? log_end : *std::upper_bound(p.bases.begin(), p.bases.end(), at);
    uint64_t expect_cut = truncate ? (at - cut_start) + (log_end - seg_end) : log_end - cut_start;
    if (truncate && at == cut_start && base == p.bases.back()) expect_cut = 0;

    RecoveryReport rep;
    auto s = MessageStore::open(rec_options(d), &rep);
    REQUIRE(s.status().to_string() == "ok");
    CHECK(!rep.clean);
    CHECK(rep.bytes_cut == expect_cut);
    CHECK(rep.log_end == cut_start);
    if (expect_cut > 0) CHECK(!rep.cut_reason.empty());
    for (uint32_t q = 0; q < 2; ++q) {
      CHECK(bodies(**s, q) == expect[q]);
      auto a = append_wait(**s, make_record("t", q, "new"));
      REQUIRE(a.status.is_ok());
      CHECK(a.appended[0].offset == expect[q].size());  // the cut offsets, reused once
      expect[q].push_back("new");
    }
    REQUIRE((*s)->close().is_ok());
    s = MessageStore::open(rec_options(d));
    REQUIRE(s);
    for (uint32_t q = 0; q < 2; ++q) CHECK(bodies(**s, q) == expect[q]);
  }
}

TEST_CASE("recovery rebuilds a missing index directory from the whole log", "[storage]") {
  Pristine p;
  TempDir work;
  fs::path d = work.path() / "data";
  fs::copy(p.data, d, fs::copy_options::recursive);
  fs::remove_all(d / "index");
  RecoveryReport rep;
  auto s = MessageStore::open(rec_options(d), &rep);
  REQUIRE(s);
  CHECK(rep.records_scanned == 120);
  CHECK(rep.index_entries_rebuilt == 120);
  CHECK(rep.bytes_cut == 0);
  CHECK(bodies(**s, 0).size() == 60);
  CHECK(bodies(**s, 1).size() == 60);
}

TEST_CASE("a recovery scan reports its progress to the opener", "[storage]") {
  Pristine p;
  TempDir work;
  fs::path d = work.path() / "data";
  fs::copy(p.data, d, fs::copy_options::recursive);
  fs::remove(d / "checkpoint");  // scan the whole log
  auto o = rec_options(d);
  std::vector<std::pair<uint64_t, uint64_t>> calls;
  o.on_recovery_progress = [&](uint64_t scanned, uint64_t total) { calls.emplace_back(scanned, total); };
  o.recovery_progress_every = Millis(0);  // at every read
  RecoveryReport rep;
  auto s = MessageStore::open(o, &rep);
  REQUIRE(s);
  REQUIRE_FALSE(calls.empty());
  uint64_t log_bytes = p.records.back().end - p.records.front().start;
  for (size_t i = 0; i < calls.size(); ++i) {
    CHECK(calls[i].second == log_bytes);
    CHECK(calls[i].first <= calls[i].second);
    if (i > 0) CHECK(calls[i].first >= calls[i - 1].first);
  }
  CHECK(rep.scanned_bytes == log_bytes);
}

TEST_CASE("recovery drops a partial trailing index entry and stale entries past the log end",
          "[storage]") {
  Pristine p;
  TempDir work;
  fs::path d = work.path() / "data";
  fs::copy(p.data, d, fs::copy_options::recursive);
  {
    std::ofstream f(d / "index" / "t" / "0", std::ios::app | std::ios::binary);
    char junk[24 + 7];
    std::memset(junk, 0x5a, sizeof junk);
    store_u64(junk, p.records.back().end + 100);  // a whole entry pointing past the end
    f.write(junk, sizeof junk);
  }
  auto s = MessageStore::open(rec_options(d));
  REQUIRE(s);
  CHECK((*s)->queue_info("t", 0).max_offset == 60);
  CHECK(bodies(**s, 0).size() == 60);
  auto a = append_wait(**s, make_record("t", 0, "next"));
  REQUIRE(a.status.is_ok());
  CHECK(a.appended[0].offset == 60);
}

TEST_CASE("an empty directory opens as an empty store", "[storage]") {
  TempDir work;
  RecoveryReport rep;
  auto s = MessageStore::open(rec_options(work.path() / "new"), &rep);
  REQUIRE(s);
  CHECK(rep.log_end == 0);
  CHECK((*s)->queues().empty());
  CHECK((*s)->queue_info("t", 0).max_offset == 0);
}

TEST_CASE("recovery cuts the log at a CRC-valid record whose queue offset breaks the sequence",
          "[storage]") {
  Pristine p;
  // A record of the last segment (covered by the checkpoint's scan too), given an offset
  // that skips ahead (a gap) or repeats the previous one.
  size_t k = 0;
  while (p.records[k].start < p.bases.back()) ++k;
  REQUIRE(k < p.records.size());
  const LoggedRecord& bad = p.records[k];
  for (int variant = 0; variant < 4; ++variant) {
    CAPTURE(variant);
    TempDir work;
    fs::path d = work.path() / "data";
    fs::copy(p.data, d, fs::copy_options::recursive);
    if (variant % 2 == 0) fs::remove(d / "checkpoint");  // a scan of the whole log
    restamp(p, d, bad, variant < 2 ? bad.offset + 5 : bad.offset - 1);
    std::map<uint32_t, std::vector<std::string>> expect;
    for (size_t i = 0; i < k; ++i) expect[p.records[i].queue].push_back(p.records[i].body);
    RecoveryReport rep;
    auto s = MessageStore::open(rec_options(d), &rep);
    REQUIRE(s.status().to_string() == "ok");
    CHECK(rep.log_end == bad.start);
    CHECK(rep.bytes_cut == p.records.back().end - bad.start);
    CHECK(rep.cut_reason.find("offset") != std::string::npos);
    for (uint32_t q = 0; q < 2; ++q) {
      CHECK(bodies(**s, q) == expect[q]);  // dense, readable to the end
      auto a = append_wait(**s, make_record("t", q, "new"));
      REQUIRE(a.status.is_ok());
      CHECK(a.appended[0].offset == expect[q].size());
    }
  }
}

TEST_CASE("a checkpoint inside a record of an older segment makes recovery rescan, not cut",
          "[storage]") {
  Pristine p;
  TempDir work;
  fs::path d = work.path() / "data";
  fs::copy(p.data, d, fs::copy_options::recursive);
  // The second record of the second segment (the scan starts at that segment, not the first).
  size_t k = 0;
  while (p.records[k].start < p.bases[1]) ++k;
  const LoggedRecord& r = p.records[k + 1];
  REQUIRE(r.end <= p.bases[2]);
  REQUIRE(write_checkpoint(FileSystem::posix(), d / "checkpoint", {r.start + 5, false}).is_ok());
  RecoveryReport rep;
  auto s = MessageStore::open(rec_options(d), &rep);
  REQUIRE(s.status().to_string() == "ok");
  CHECK(rep.bytes_cut == 0);
  CHECK(rep.log_end == p.records.back().end);
  CHECK(bodies(**s, 0).size() == 60);
  CHECK(bodies(**s, 1).size() == 60);
}

TEST_CASE("a clean checkpoint is not trusted when the indexes stop short of the log end",
          "[storage]") {
  Pristine p;
  TempDir work;
  fs::path d = work.path() / "data";
  fs::copy(p.data, d, fs::copy_options::recursive);
  {
    auto s = MessageStore::open(rec_options(d));
    REQUIRE(s);
    REQUIRE((*s)->close().is_ok());
  }
  auto c = read_checkpoint(FileSystem::posix(), d / "checkpoint");
  REQUIRE(c);
  REQUIRE(c->clean);
  // The newest record's queue index lost its last two entries.
  uint32_t q = p.records.back().queue;
  fs::path idx = d / "index" / "t" / std::to_string(q);
  fs::resize_file(idx, fs::file_size(idx) - 2 * 24);
  RecoveryReport rep;
  auto s = MessageStore::open(rec_options(d), &rep);
  REQUIRE(s);
  CHECK(!rep.clean);
  CHECK((*s)->queue_info("t", q).max_offset == 60);
  CHECK(bodies(**s, q).size() == 60);
  auto a = append_wait(**s, make_record("t", q, "next"));
  REQUIRE(a.status.is_ok());
  CHECK(a.appended[0].offset == 60);
}

namespace {

// A store with 60 records in each of t/0 and t/1, closed cleanly.
void clean_store(const fs::path& d, size_t pad = 0) {
  auto s = MessageStore::open(rec_options(d));
  REQUIRE(s);
  for (int i = 0; i < 120; ++i)
    REQUIRE(append_wait(**s, make_record("t", i % 2, fmt::format("m{}", i) + std::string(pad, 'p'))).status.is_ok());
  REQUIRE((*s)->close().is_ok());
}

}  // namespace

TEST_CASE("an index file shortened after a clean stop is rebuilt, not trusted", "[storage]") {
  TempDir work;
  fs::path d = work.path() / "data";
  clean_store(d);
  // Trusting it would make queue 1 end at 10: new sends would reuse offsets 10.. that the
  // log holds already, and the next scan would cut them.
  fs::resize_file(d / "index" / "t" / "1", 10 * 24);
  RecoveryReport rep;
  auto s = MessageStore::open(rec_options(d), &rep);
  REQUIRE(s);
  CHECK_FALSE(rep.clean);
  CHECK(rep.cut_reason.find("indexes changed") != std::string::npos);
  CHECK(rep.bytes_cut == 0);
  CHECK((*s)->queue_info("t", 1).max_offset == 60);
  CHECK(bodies(**s, 1).size() == 60);
  auto a = append_wait(**s, make_record("t", 1, "next"));
  REQUIRE(a.status.is_ok());
  CHECK(a.appended[0].offset == 60);
}

TEST_CASE("a clean stop with unchanged indexes opens without a scan", "[storage]") {
  TempDir work;
  fs::path d = work.path() / "data";
  clean_store(d);
  RecoveryReport rep;
  auto s = MessageStore::open(rec_options(d), &rep);
  REQUIRE(s);
  CHECK(rep.clean);
  CHECK(rep.records_scanned == 0);
  CHECK((*s)->queue_info("t", 0).max_offset == 60);
}

// The segment files of data dir d, oldest first.
std::vector<std::string> segment_files(const fs::path& d) {
  auto names = FileSystem::posix().list(d / "commitlog");
  REQUIRE(names);
  std::vector<std::string> segs;
  for (auto& n : *names)
    if (n.find('.') == std::string::npos) segs.push_back(n);
  std::sort(segs.begin(), segs.end());
  return segs;
}

TEST_CASE("the newest segments removed after a clean stop stop the open: no offset is given out again",
          "[storage]") {
  TempDir work;
  fs::path d = work.path() / "data";
  clean_store(d, 300);  // 8 KiB segments: several
  auto segs = segment_files(d);
  REQUIRE(segs.size() >= 3);
  SECTION("the newest one") { fs::remove(d / "commitlog" / segs.back()); }
  SECTION("all of them") {
    for (auto& n : segs) fs::remove(d / "commitlog" / n);
  }
  auto s = MessageStore::open(rec_options(d));
  REQUIRE_FALSE(s);
  CHECK(s.status().code() == mq::Code::corruption);
  CHECK(s.status().message().find("are missing") != std::string::npos);
  // The way out it names: without the checkpoint the rest opens (a full scan).
  fs::remove(d / "checkpoint");
  auto again = MessageStore::open(rec_options(d));
  REQUIRE(again);
}

TEST_CASE("a segment removed after a clean stop stops the open, naming the hole", "[storage]") {
  TempDir work;
  fs::path d = work.path() / "data";
  clean_store(d, 300);  // 8 KiB segments: several
  auto segs = segment_files(d);
  REQUIRE(segs.size() >= 3);
  fs::remove(d / "commitlog" / segs[1]);
  auto s = MessageStore::open(rec_options(d));
  REQUIRE_FALSE(s);
  CHECK(s.status().code() == mq::Code::corruption);
  CHECK(s.status().message().find("are missing") != std::string::npos);
  CHECK(s.status().message().find(segs[2]) != std::string::npos);
}

#include <catch2/catch.hpp>

#include <chrono>
#include <fstream>
#include <sstream>

#include "broker/replication.h"
#include "protocol/replication_messages.h"
#include "util/bytes.h"
#include "storage/message_store.h"
#include "storage/store_test_util.h"

using namespace mq;
using namespace mq::storage;
using namespace mq::storage::test;

namespace {

std::unique_ptr<MessageStore> open_at(const fs::path& dir, uint64_t segment_size) {
  StoreOptions o;
  o.dir = dir;
  o.flush = FlushMode::sync;
  o.segment_size = segment_size;
  auto s = MessageStore::open(o);
  REQUIRE(s.status().to_string() == "ok");
  return std::move(*s);
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Copies master's log into slave the way the replication stream does.
void copy_log(MessageStore& master, MessageStore& slave, size_t chunk) {
  for (;;) {
    uint64_t pos = slave.log_end();
    auto data = master.read_log(pos, chunk);
    REQUIRE(data.status().to_string() == "ok");
    if (data->empty()) break;
    REQUIRE(slave.append_raw(pos, *data, master.segment_starts_at(pos)).to_string() == "ok");
  }
}

}  // namespace

TEST_CASE("append_raw rebuilds a byte-identical log with the master's segments and offsets",
          "[broker][replication]") {
  TempDir m, s;
  auto master = open_at(m.path(), 4096);
  // The slave's own segment size differs: only the master decides where segments start.
  auto slave = open_at(s.path(), 1 << 20);
  slave->set_replica(true);
  for (int i = 0; i < 200; ++i) {
    std::string batch = make_record("t", i % 3, "body-" + std::to_string(i));
    if (i % 5 == 0) batch += make_record("u", 0, std::string(300, 'x'));
    REQUIRE(append_wait(*master, batch).status.is_ok());
    if (i == 50) copy_log(*master, *slave, 1000);  // part of it in small chunks
  }
  copy_log(*master, *slave, 1 << 16);
  CHECK(slave->log_end() == master->log_end());
  CHECK(slave->durable_end() == master->log_end());
  for (auto& [topic, q] : master->queues()) {
    auto mi = master->queue_info(topic, q);
    auto si = slave->queue_info(topic, q);
    CHECK(si.max_offset == mi.max_offset);
    auto mr = master->read(topic, q, 0, 10000, 1 << 20);
    auto sr = slave->read(topic, q, 0, 10000, 1 << 20);
    REQUIRE(mr);
    REQUIRE(sr);
    CHECK(sr->records == mr->records);
  }
  // A replica refuses producers' appends.
  CHECK_FALSE(append_wait(*slave, make_record("t", 0, "x")).status.is_ok());
  REQUIRE(master->close().is_ok());
  REQUIRE(slave->close().is_ok());
  std::vector<std::string> mf, sf;
  for (auto& e : fs::directory_iterator(m.path() / "commitlog")) mf.push_back(e.path().filename());
  for (auto& e : fs::directory_iterator(s.path() / "commitlog")) sf.push_back(e.path().filename());
  std::sort(mf.begin(), mf.end());
  std::sort(sf.begin(), sf.end());
  REQUIRE(mf.size() > 3);
  REQUIRE(sf == mf);
  for (auto& f : mf) CHECK(slurp(m.path() / "commitlog" / f) == slurp(s.path() / "commitlog" / f));

  // Reopened (recovery trusts the clean checkpoint) the slave still serves the same reads.
  auto again = open_at(s.path(), 1 << 20);
  CHECK(again->queue_info("t", 0).max_offset == 67);
}

TEST_CASE("append_raw refuses a wrong position and records that do not follow the queue",
          "[broker][replication]") {
  TempDir m, s;
  auto master = open_at(m.path(), 1 << 20);
  auto slave = open_at(s.path(), 1 << 20);
  REQUIRE(append_wait(*master, make_record("t", 0, "a") + make_record("t", 0, "b")).status.is_ok());
  auto all = master->read_log(0, 1 << 20);
  REQUIRE(all);
  CHECK_FALSE(slave->append_raw(5, *all, false).is_ok());  // not at the slave's end
  std::string garbage = *all;
  garbage[garbage.size() - 1] ^= 0x55;
  CHECK_FALSE(slave->append_raw(0, garbage, false).is_ok());  // CRC
  CHECK(slave->log_end() == 0);
  auto first = master->read_log(0, 1);  // one record
  REQUIRE(first);
  auto second = master->read_log(first->size(), 1 << 20);
  REQUIRE(second);
  // The second record alone at position 0 would put offset 1 where 0 belongs.
  CHECK_FALSE(slave->append_raw(0, *second, false).is_ok());
  REQUIRE(slave->append_raw(0, *all, false).is_ok());
  CHECK(slave->queue_info("t", 0).max_offset == 2);
}

TEST_CASE("an empty store copies a master's log from where retention left it to start", "[broker][replication]") {
  TempDir m, s;
  auto master = open_at(m.path(), 4096);
  for (int i = 0; i < 300; ++i)
    REQUIRE(append_wait(*master, make_record("t", i % 3, "body-" + std::to_string(i))).status.is_ok());
  master->enforce_retention(wall_ms() + 365ll * 24 * 3600 * 1000);  // every segment but the active one goes
  uint64_t start = master->log_start();
  REQUIRE(start > 0);
  for (int i = 300; i < 330; ++i)  // and a queue first seen after the start
    REQUIRE(append_wait(*master, make_record(i % 2 ? "t" : "v", i % 3, "body-" + std::to_string(i))).status.is_ok());

  auto slave = open_at(s.path(), 1 << 20);
  slave->set_replica(true);
  CHECK(slave->holds_no_record());
  // Not at the master's start: refused, the log still empty.
  CHECK_FALSE(slave->append_raw(start, *master->read_log(start, 1 << 16), true).is_ok());
  CHECK(slave->holds_no_record());
  // A first copy that stopped right after its log moved (to an earlier start of the
  // master): still without records, after a restart too, so it can move again.
  REQUIRE(slave->start_log_at(start - 1000).to_string() == "ok");
  REQUIRE(slave->close().is_ok());
  slave = open_at(s.path(), 1 << 20);
  slave->set_replica(true);
  CHECK(slave->log_start() == start - 1000);
  CHECK(slave->holds_no_record());
  REQUIRE(slave->start_log_at(start).to_string() == "ok");
  CHECK(slave->log_start() == start);
  CHECK(slave->log_end() == start);
  CHECK(slave->holds_no_record());
  // A queue of which the master keeps no record counts on from the master's offset;
  // moved on again when its offset there went on meanwhile, never back.
  REQUIRE(slave->start_queue_at("gone", 1, 7).to_string() == "ok");
  REQUIRE(slave->start_queue_at("gone", 1, 12).to_string() == "ok");
  REQUIRE(slave->start_queue_at("gone", 1, 9).to_string() == "ok");
  CHECK(slave->queue_info("gone", 1).min_offset == 12);
  CHECK(slave->queue_info("gone", 1).max_offset == 12);
  CHECK(slave->holds_no_record());
  {
    TempDir other;
    auto from0 = open_at(other.path(), 4096);
    CHECK_FALSE(from0->start_queue_at("gone", 1, 7).is_ok());  // a log from 0 has every record
  }
  uint64_t pos = start;
  for (;;) {  // as the replication stream does
    auto data = master->read_log(pos, 1000);
    REQUIRE(data);
    if (data->empty()) break;
    REQUIRE(slave->append_raw(pos, *data, master->segment_starts_at(pos)).to_string() == "ok");
    pos += data->size();
  }
  CHECK(slave->log_end() == master->log_end());
  CHECK_FALSE(slave->holds_no_record());
  CHECK_FALSE(slave->start_log_at(0).is_ok());  // no longer empty
  // (gone/1 is in an index file only: lost with it, as on a master.)
  auto same = [&](MessageStore& copy, bool with_gone = true) {
    REQUIRE(copy.queues().size() == master->queues().size() + (with_gone ? 1 : 0));
    if (with_gone) {
      CHECK(copy.queue_info("gone", 1).min_offset == 12);
      CHECK(copy.queue_info("gone", 1).max_offset == 12);
    }
    for (auto& [topic, q] : master->queues()) {
      CAPTURE(topic, q);
      auto mi = master->queue_info(topic, q);
      auto si = copy.queue_info(topic, q);
      CHECK(si.min_offset == mi.min_offset);
      CHECK(si.max_offset == mi.max_offset);
      auto mr = master->read(topic, q, 0, 10000, 1 << 20);
      auto sr = copy.read(topic, q, 0, 10000, 1 << 20);
      REQUIRE(mr);
      REQUIRE(sr);
      CHECK(sr->records == mr->records);
    }
  };
  same(*slave);
  CHECK(master->queue_info("t", 0).min_offset > 0);
  // A crash image whose queue indexes were lost: rebuilt from the log, offsets kept.
  TempDir crash;
  fs::copy(s.path(), crash.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::remove(crash.path() / "LOCK");
  fs::remove_all(crash.path() / "index");
  TempDir crash2;  // and one that kept them (recovery, no clean checkpoint)
  fs::copy(s.path(), crash2.path(), fs::copy_options::recursive | fs::copy_options::overwrite_existing);
  fs::remove(crash2.path() / "LOCK");
  REQUIRE(slave->close().is_ok());
  auto again = open_at(s.path(), 1 << 20);
  same(*again);
  auto rebuilt = open_at(crash.path(), 1 << 20);
  same(*rebuilt, false);
  auto recovered = open_at(crash2.path(), 1 << 20);
  same(*recovered);
}

TEST_CASE("log digests: a copy's tail matches its master's, another log's does not", "[broker][replication]") {
  TempDir m, s, o;
  auto master = open_at(m.path(), 4096);
  auto slave = open_at(s.path(), 1 << 20);
  auto other = open_at(o.path(), 4096);
  slave->set_replica(true);
  for (int i = 0; i < 60; ++i) {
    REQUIRE(append_wait(*master, make_record("t", 0, "A-" + std::to_string(1000 + i))).status.is_ok());
    REQUIRE(append_wait(*other, make_record("t", 0, "B-" + std::to_string(1000 + i))).status.is_ok());
  }
  copy_log(*master, *slave, 1 << 16);
  REQUIRE(other->log_end() == master->log_end());  // the same sizes: record boundaries alike
  uint64_t end = slave->log_end();
  auto tail = slave->log_tail_digest(end, 4096);
  REQUIRE(tail);
  CHECK(tail->first < end);
  CHECK(end - tail->first <= 4096);
  CHECK((master->segment_starts_at(tail->first) || tail->first == end - 4096 || tail->first == 0));
  auto mine = master->log_digest(tail->first, end);
  REQUIRE(mine);
  CHECK(*mine == tail->second);
  auto theirs = other->log_digest(tail->first, end);
  REQUIRE(theirs);
  CHECK(*theirs != tail->second);
  // Never across a segment start, never past the visible end, never an empty range.
  CHECK_FALSE(master->log_digest(0, end));
  CHECK_FALSE(master->log_digest(tail->first, end + 1));
  CHECK_FALSE(master->log_digest(end, end));
  CHECK_FALSE(slave->log_tail_digest(0, 4096));
  auto small = slave->log_tail_digest(end, 10);
  REQUIRE(small);
  CHECK(small->first == end - 10);
  CHECK(*master->log_digest(end - 10, end) == small->second);
}

TEST_CASE("replicate payloads round-trip and reject truncation", "[broker][replication]") {
  protocol::ReplicateRequest rq;
  rq.pos = 123456789;
  rq.max_bytes = 1000;
  rq.wait_ms = 7;
  rq.slave_addr = "127.0.0.1:9";
  std::string out;
  rq.encode(out);
  protocol::ReplicateRequest rq2;
  REQUIRE(rq2.decode(out));
  CHECK(rq2.pos == rq.pos);
  CHECK(rq2.slave_addr == rq.slave_addr);
  CHECK_FALSE(rq2.decode(std::string_view(out).substr(0, out.size() - 1)));
  CHECK_FALSE(rq2.has_tail);
  // With the digest of the slave's last bytes (optional: an older slave sends none).
  rq.has_tail = true;
  rq.tail_from = 123450000;
  rq.tail_crc = 0xdeadbeef;
  out.clear();
  rq.encode(out);
  REQUIRE(rq2.decode(out));
  CHECK(rq2.has_tail);
  CHECK(rq2.tail_from == rq.tail_from);
  CHECK(rq2.tail_crc == rq.tail_crc);
  for (size_t cut = 1; cut < 12; ++cut) CHECK_FALSE(rq2.decode(std::string_view(out).substr(0, out.size() - cut)));
  CHECK_FALSE(rq2.decode(out + "x"));
  rq.tail_from = rq.pos;  // an empty range is no digest
  out.clear();
  rq.encode(out);
  CHECK_FALSE(rq2.decode(out));

  protocol::ReplicateResponse rs;
  rs.pos = 42;
  rs.new_segment = true;
  rs.master_end = 99;
  rs.topics = {{"a", 4}, {"b", 8}};
  rs.records = "raw-bytes";
  out.clear();
  rs.encode(out);
  protocol::ReplicateResponse rs2;
  REQUIRE(rs2.decode(out));
  CHECK(rs2.pos == 42);
  CHECK(rs2.new_segment);
  CHECK(rs2.master_end == 99);
  CHECK(rs2.topics == rs.topics);
  CHECK(rs2.records == "raw-bytes");
  CHECK_FALSE(rs2.decode(std::string_view(out).substr(0, 10)));
}

TEST_CASE("sync_offsets and replication_status payloads round-trip and reject truncation",
          "[broker][replication]") {
  protocol::SyncOffsetsRequest rq;
  rq.known_version = 17;
  rq.offsets = {{"g", {"orders", 3}, 120, 2}, {"%SCHEDULE%", {"%SCHEDULE%", 0}, 7, 0}};
  std::string out;
  rq.encode(out);
  protocol::SyncOffsetsRequest rq2;
  REQUIRE(rq2.decode(out));
  CHECK(rq2.known_version == 17);
  CHECK(rq2.offsets == rq.offsets);
  for (size_t cut = 0; cut < out.size(); ++cut)
    CHECK_FALSE(rq2.decode(std::string_view(out).substr(0, cut)));
  CHECK_FALSE(rq2.decode(out + "x"));

  protocol::SyncOffsetsResponse rs;
  rs.version = 9;
  rs.has_table = true;
  rs.offsets = rq.offsets;
  out.clear();
  rs.encode(out);
  protocol::SyncOffsetsResponse rs2;
  REQUIRE(rs2.decode(out));
  CHECK(rs2.version == 9);
  CHECK(rs2.has_table);
  CHECK(rs2.offsets == rs.offsets);
  CHECK_FALSE(rs2.decode(std::string_view(out).substr(0, out.size() - 1)));
  // unchanged table: no entries travel, and entries without the flag are refused
  rs.has_table = false;
  out.clear();
  rs.encode(out);
  REQUIRE(rs2.decode(out));
  CHECK_FALSE(rs2.has_table);
  CHECK(rs2.offsets.empty());
  std::string bad;
  ByteWriter w(bad);
  w.u64(1);
  w.u8(0);
  w.u32(1);
  w.str16("g");
  w.str16("t");
  w.u32(0);
  w.i64(1);
  w.u32(0);
  CHECK_FALSE(rs2.decode(bad));
  // a count far beyond the payload is refused before anything is read
  std::string huge;
  ByteWriter(huge).u64(1);
  ByteWriter(huge).u8(1);
  ByteWriter(huge).u32(0xffffffffu);
  CHECK_FALSE(rs2.decode(huge));

  protocol::ReplicationStatusResponse st;
  st.log_end = 5000;
  st.slaves = {{"127.0.0.1:1", true, 5000, 0, 0}, {"127.0.0.1:2", false, 1000, 4000, 1234}};
  out.clear();
  st.encode(out);
  protocol::ReplicationStatusResponse st2;
  REQUIRE(st2.decode(out));
  CHECK(st2.log_end == 5000);
  CHECK(st2.slaves == st.slaves);
  for (size_t cut = 0; cut < out.size(); ++cut)
    CHECK_FALSE(st2.decode(std::string_view(out).substr(0, cut)));
}

TEST_CASE("a slave holds the master's offset tables until its log reaches a later master log end",
          "[broker][replication]") {
  using Table = std::vector<protocol::GroupOffset>;
  auto table = [](int64_t progress) {
    return Table{{"%SCHEDULE%", {"%SCHEDULE%", 0}, progress, 0}, {"g", {"t", 0}, progress * 10, 0}};
  };
  broker::HeldOffsets held;
  CHECK(held.release(~0ull).empty());

  // Delay progress 4 while this slave's log ends at 1000 and the moved copies lie beyond it:
  // nothing is released before a bound is known, however far the log is.
  held.hold(table(4));
  CHECK(held.unbounded());
  CHECK(held.release(~0ull).empty());
  held.bound(5000);  // the master's log end, read after the table was taken
  CHECK_FALSE(held.unbounded());
  CHECK(held.release(1000).empty());
  CHECK(held.release(4999).empty());
  auto out = held.release(5000);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == table(4));
  CHECK(held.size() == 0);

  // A lagging slave: the oldest bounded table keeps its bound while newer ones replace each
  // other, so catching up releases the oldest, then the newest.
  held.hold(table(5));
  held.bound(6000);
  held.hold(table(6));
  held.bound(7000);
  held.hold(table(7));  // replaces table(6)
  held.hold(table(8));  // still unbounded: replaces table(7)
  CHECK(held.size() == 2);
  held.bound(9000);
  out = held.release(8999);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == table(5));
  CHECK(held.release(8999).empty());
  out = held.release(9000);
  REQUIRE(out.size() == 1);
  CHECK(out[0] == table(8));

  // A new connection forgets what the previous one held.
  held.hold(table(9));
  held.clear();
  held.bound(1);
  CHECK(held.release(~0ull).empty());
}

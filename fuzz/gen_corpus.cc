// Writes the seed corpora of the fuzz targets: valid inputs made with libmq's
// own encoders (so the fuzzers start deep), plus a few damaged ones.
//   fuzz-gen-corpus DIR   -> DIR/<target>/<seed>
// The committed seeds live in tests/fuzz/corpus; regenerate with
//   cmake --build BUILD --target fuzz-gen-corpus && BUILD/bin/fuzz-gen-corpus tests/fuzz/corpus
#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>

#include "cli/base64.h"
#include "protocol/frame.h"
#include "protocol/group_messages.h"
#include "protocol/messages.h"
#include "protocol/replication_messages.h"
#include "storage/checkpoint.h"
#include "storage/fault_fs.h"
#include "storage/message_store.h"
#include "storage/record.h"
#include "util/bytes.h"

using namespace mq;
using namespace mq::protocol;
using namespace mq::storage;
namespace fsys = std::filesystem;

namespace {

fsys::path g_root;

void put(const std::string& target, const std::string& name, std::string_view data) {
  fsys::create_directories(g_root / target);
  std::ofstream(g_root / target / name, std::ios::binary).write(data.data(), static_cast<std::streamsize>(data.size()));
}

std::string u32le(uint32_t v) {
  std::string s(4, '\0');
  store_u32(s.data(), v);
  return s;
}
std::string u64le(uint64_t v) {
  std::string s(8, '\0');
  store_u64(s.data(), v);
  return s;
}

Message msg(std::string topic, uint32_t queue, std::string body, std::string tag = "", Properties props = {}) {
  Message m;
  m.topic = std::move(topic);
  m.queue = queue;
  m.body = std::move(body);
  m.tag = std::move(tag);
  m.key = "key-1";
  m.props = std::move(props);
  m.born_ms = 1764000000000;
  m.store_ms = 1764000000123;
  for (size_t i = 0; i < 16; ++i) m.id[i] = static_cast<uint8_t>(i * 17);
  return m;
}

std::string rec(const Message& m) {
  std::string out;
  encode_record(m, out);
  return out;
}

void append_wait(MessageStore& s, std::string batch) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  s.append(std::move(batch), [&](Status, std::vector<Appended>) {
    std::lock_guard lk(mu);
    done = true;
    cv.notify_all();
  });
  std::unique_lock lk(mu);
  cv.wait(lk, [&] { return done; });
}

const std::string kSplit = "#MQSPLIT";

void records() {
  auto a = rec(msg("orders", 0, "hello"));
  auto b = rec(msg("orders", 3, "with tag and props", "tagA", {{"k1", "v1"}, {"%ORIGIN_TOPIC", "x"}}));
  auto c = rec(msg("%DLQ%g1", 1, std::string("\x00\xff\xfe binary", 10)));
  auto e = rec(msg("t", 0, ""));
  put("record", "one", a);
  put("record", "props", b);
  put("record", "binary", c);
  put("record", "empty-body", e);
  put("record", "three", a + b + c);
  put("record", "torn", (a + b).substr(0, a.size() + b.size() / 2));
  std::string bad = b;
  bad[bad.size() - 1] ^= 1;
  put("record", "bad-crc", a + bad);
  put("record", "hex-id", "00112233445566778899aabbccddeeff");
}

// A data dir written by the store itself, as recovery input.
std::string data_dir(bool clean, bool torn, bool two_segments, bool with_index, uint8_t extra_flags,
                     std::string replicate = "") {
  FaultFileSystem ffs;
  StoreOptions o;
  o.dir = "/data";
  o.fs = &ffs;
  o.segment_size = 4096;  // the smallest the store takes
  auto s = MessageStore::open(o);
  if (!s) return "";
  std::string pad(two_segments ? 700 : 0, '.');
  for (int i = 0; i < 6; ++i)
    append_wait(**s, rec(msg("t", i % 2, "body " + std::to_string(i) + pad, i % 3 ? "x" : "")));
  append_wait(**s, rec(msg("u", 0, "other topic")) + rec(msg("t", 0, "batched")));
  uint64_t end = (*s)->log_end();
  if (clean) (void)(*s)->close();
  s->reset();
  auto files = ffs.files();
  std::vector<std::string> segs;
  for (auto& f : files)
    if (f.rfind("/data/commitlog/", 0) == 0) segs.push_back(ffs.content(f));
  if (segs.empty()) return "";
  std::string seg0 = segs[0], seg1 = segs.size() > 1 ? segs[1] : "";
  if (torn) (segs.size() > 1 ? seg1 : seg0).resize((segs.size() > 1 ? seg1 : seg0).size() - 7);
  uint8_t flags = extra_flags | 1 | (clean ? 2 : 0) | (with_index ? 4 : 0);
  std::string out;
  out.push_back(static_cast<char>(flags));
  out += u32le(static_cast<uint32_t>(clean ? end : end / 2));
  out += seg0 + kSplit + seg1 + kSplit + (with_index ? ffs.content("/data/index/t/0") : "") + kSplit + replicate;
  return out;
}

void recovery() {
  put("recovery", "clean", data_dir(true, false, false, true, 0));
  put("recovery", "clean-two-segments", data_dir(true, false, true, true, 0));
  put("recovery", "crashed", data_dir(false, false, false, true, 0));
  put("recovery", "torn-tail", data_dir(false, true, false, true, 0));
  put("recovery", "torn-two-segments", data_dir(false, true, true, false, 0));
  put("recovery", "async", data_dir(false, false, true, true, 16));
  put("recovery", "gap", data_dir(false, false, true, false, 8));
  put("recovery", "retention", data_dir(true, false, true, true, 128));
  auto m = msg("t", 0, "replicated");
  m.offset = 4;
  put("recovery", "replicate", data_dir(false, false, false, false, 0, rec(m)));
  put("recovery", "empty", std::string(5, '\0'));
  put("recovery", "bad-checkpoint",
      std::string("\x20\0\0\0\0", 5) + rec(msg("t", 0, "x")) + kSplit + kSplit + kSplit + kSplit +
          "mq-checkpoint 1 99 1 deadbeef\n");
}

std::string frame(Type t, uint16_t flags, std::string_view payload, uint32_t id = 7) {
  std::string out;
  encode_frame(out, t, flags, id, protocol::Code::ok, payload);
  return out;
}

// (type, response?, payload) of every message kind.
std::vector<std::tuple<Type, bool, std::string, std::string>> payloads() {
  std::vector<std::tuple<Type, bool, std::string, std::string>> v;
  auto add = [&](Type t, bool resp, std::string name, auto&& m) {
    std::string p;
    m.encode(p);
    v.emplace_back(t, resp, std::move(name), std::move(p));
  };
  HelloResponse h;
  h.version = "0.1.0";
  h.broker_addr = "127.0.0.1:9876";
  h.slaves = {"127.0.0.1:9877"};
  h.max_message_size = 4 << 20;
  h.default_queues = 4;
  add(Type::hello, true, "hello-resp", h);
  {
    std::string p;
    ByteWriter(p).str16("mq-send/0.1.0");
    v.emplace_back(Type::hello, false, "hello", p);
    std::string t;
    ByteWriter(t).str16("orders");
    v.emplace_back(Type::topic_info, false, "topic-info", t);
    std::string g;
    ByteWriter(g).str16("g1");
    v.emplace_back(Type::group_info, false, "group-info", g);
    std::string s = u32le(2) + rec(msg("orders", 0, "a")) + rec(msg("orders", 1, "b", "t", {{"p", "q"}}));
    v.emplace_back(Type::send, false, "send", s);
  }
  SendResponse sr;
  sr.placed = {{0, 10}, {1, 3}};
  add(Type::send, true, "send-resp", sr);
  PullRequest pr;
  pr.topic = "orders";
  pr.queue = 1;
  pr.offset = 5;
  pr.wait_ms = 1000;
  pr.tag_hashes = {tag_hash("a"), tag_hash("b")};
  add(Type::pull, false, "pull", pr);
  PullResponse pl;
  pl.next_offset = 7;
  pl.max_offset = 7;
  pl.count = 2;
  pl.records = rec(msg("orders", 1, "x")) + rec(msg("orders", 1, "y"));
  add(Type::pull, true, "pull-resp", pl);
  TopicInfoResponse ti;
  ti.topics = {{"orders", {{0, 0, 10, 1764000000000, 1234}, {1, 2, 3, 0, 0}}}, {"%DLQ%g", {}}};
  add(Type::topic_info, true, "topic-info-resp", ti);
  OffsetForTimeRequest ot;
  ot.topic = "orders";
  ot.ms = 1764000000000;
  add(Type::offset_for_time, false, "offset-for-time", ot);
  HeartbeatRequest hb;
  hb.group = "g1";
  hb.client_id = "host-1-abc";
  hb.host = "host";
  hb.pid = 42;
  hb.topics = {"orders"};
  hb.released = {{"orders", 2}};
  hb.progress = {{{"orders", 1}, 5, 6, 100, 1, 2}};
  add(Type::heartbeat, false, "heartbeat", hb);
  HeartbeatResponse hr;
  hr.generation = 3;
  hr.members = 2;
  hr.assigned = {{"orders", 0}, {"orders", 1}};
  hr.reset = {{"orders", 1}};
  add(Type::heartbeat, true, "heartbeat-resp", hr);
  QueryOffsetsRequest qo;
  qo.group = "g1";
  qo.queues = {{"orders", 0}};
  add(Type::query_offsets, false, "query-offsets", qo);
  QueryOffsetsResponse qr;
  qr.entries = {{{"orders", 0}, 12, 1}};
  add(Type::query_offsets, true, "query-offsets-resp", qr);
  CommitRequest cr;
  cr.group = "g1";
  cr.client_id = "c";
  cr.entries = {{{"orders", 0}, 12, 1}, {{"orders", 1}, -1, 0}};
  add(Type::commit_offsets, false, "commit", cr);
  CommitResponse cp;
  cp.results = {{true, 12, 1}, {false, 3, 2}};
  add(Type::commit_offsets, true, "commit-resp", cp);
  SendBackRequest sb;
  sb.group = "g1";
  sb.reason = "exit status 1";
  sb.record = rec(msg("orders", 0, "failed"));
  add(Type::send_back, false, "send-back", sb);
  ResetRequest rr;
  rr.group = "g1";
  rr.entries = {{{"orders", 0}, -1, 0}, {{"orders", 1}, 5, 7}};
  add(Type::reset_offsets, false, "reset", rr);
  ResetResponse rp;
  rp.results = {{true, 5, 0}};
  add(Type::reset_offsets, true, "reset-resp", rp);
  GroupInfoResponse gi;
  GroupInfo g;
  g.group = "g1";
  g.members = {{"c1", "host", 42, 100, {{"orders", 0}}}};
  g.offsets = {{{"orders", 0}, 12, 1}};
  g.progress = {{{"orders", 0}, 12, -1, 0, 0, 0}};
  gi.groups = {g};
  add(Type::group_info, true, "group-info-resp", gi);
  ReplicateRequest rq;
  rq.pos = 4096;
  rq.slave_addr = "127.0.0.1:9877";
  add(Type::replicate, false, "replicate", rq);
  ReplicateResponse rs;
  rs.pos = 0;
  rs.new_segment = true;
  rs.master_end = 200;
  rs.topics = {{"orders", 4}};
  rs.records = rec(msg("orders", 0, "r"));
  add(Type::replicate, true, "replicate-resp", rs);
  SyncOffsetsRequest so;
  so.known_version = 3;
  so.offsets = {{"g", {"orders", 1}, 40, 0}};
  add(Type::sync_offsets, false, "sync-offsets", so);
  SyncOffsetsResponse sr2;
  sr2.version = 4;
  sr2.has_table = true;
  sr2.offsets = {{"g", {"orders", 1}, 40, 0}, {"%SCHEDULE%", {"%SCHEDULE%", 0}, 2, 0}};
  add(Type::sync_offsets, true, "sync-offsets-resp", sr2);
  ReplicationStatusResponse rst;
  rst.log_end = 9000;
  rst.slaves = {{"127.0.0.1:9877", true, 8000, 1000, 250}};
  add(Type::replication_status, true, "replication-status-resp", rst);
  AuthChallengeResponse ac;
  ac.nonce = std::string(32, 'n');
  ac.required = true;
  add(Type::auth_challenge, true, "auth-challenge-resp", ac);
  AuthRequest ar;
  ar.user = "alice";
  ar.proof = std::string(32, 'p');
  add(Type::auth, false, "auth", ar);
  return v;
}

void protocol_seeds() {
  std::string all;
  for (auto& [t, resp, name, p] : payloads()) {
    std::string m;
    m.push_back(static_cast<char>(static_cast<uint8_t>(t) | (resp ? 0x80 : 0)));
    put("messages", name, m + p);
    std::string f = frame(t, resp ? kFlagResponse : 0, p);
    put("frame", name, std::string("\x03\xff", 2) + f);
    all += f;
  }
  put("frame", "stream", std::string("\x05\xff", 2) + all);
  put("frame", "oneway-empty", std::string("\x01\x00", 2) + frame(Type::hello, kFlagOneway, ""));
  std::string badv = frame(Type::pull, 0, "");
  badv[4] = 9;
  put("frame", "bad-version", std::string("\x01\x10", 2) + badv);
  put("frame", "too-large", std::string("\x01\x00", 2) + frame(Type::send, 0, std::string(300, 'x')));
  put("frame", "short-length", std::string("\x01\x10", 2) + u32le(3) + "abc");
}

void json_input() {
  // first byte: mode (low 2 bits: lines, nul, raw, json) and max item size.
  auto j = [](uint8_t max, int mode) { return std::string(1, static_cast<char>((max << 2) | mode)); };
  put("json_input", "lines", j(40, 0) + "hello\nworld\n\nlast without newline");
  put("json_input", "nul", j(40, 1) + std::string("a\0bb\0ccc", 8));
  put("json_input", "raw", j(60, 2) + "all of it\nin one message");
  put("json_input", "too-long", j(1, 0) + "short\nthis line is far too long for eight bytes\nok");
  put("json_input", "json", j(63, 3) +
      R"({"body":"hello","key":"k1","tag":"t","props":{"a":"b","c":"d"}})" "\n"
      R"({"body_b64":"AP8Q","key":null})" "\n"
      R"({"body":"caf\u00e9 \"quoted\" \ud83d\ude00"})" "\n"
      R"({"body":1})" "\n"
      R"({"body":"x","body_b64":"eA=="})" "\n"
      R"({"body_b64":"eA="})" "\n"
      R"({"props":{"":"x"},"body":"y"})" "\n"
      R"([1,2,3])" "\n"
      "   \n"
      R"({"body":"unterminated)" "\n");
  put("json_input", "json-crlf", j(20, 3) + "{\"body\":\"a\"}\r\n{\"body\":\"b\",\"tag\":\"t\"}\r\n");
  put("json_input", "b64", j(30, 2) + "aGVsbG8gd29ybGQ=");
}

void message_format() {
  auto head = u64le(1764000000000) + u64le(1764000000123) + u32le(2);
  std::string sep("\0|", 2);
  auto mk = [&](std::string spec, std::string body, std::string head2 = "") {
    return (head2.empty() ? head : head2) + spec + sep + "orders" + sep + "key" + sep + "tag" + sep + body + sep +
           "prop" + sep + "value" + sep + "%ORIGIN_TOPIC" + sep + "x";
  };
  put("message_format", "json", mk("json", "hello"));
  put("message_format", "json-binary", mk("json", std::string("\xff\xfe\x00", 3)));
  put("message_format", "json-utf8", mk("json", "caf\xc3\xa9 \xf0\x9f\x98\x80 \"q\" \\ \n\t\x01"));
  put("message_format", "body", mk("body", "plain"));
  put("message_format", "template", mk("%t/%q@%o %i key=%k tag=%T %p{prop} %p{none} %%\\t%s\\n\\0\\\\", "b"));
  put("message_format", "bad-template", mk("%x %p{unclosed", "b"));
  put("message_format", "negative-time", mk("json", "t", u64le(static_cast<uint64_t>(-1)) + u64le(0) + u32le(0)));
  put("message_format", "huge-time", mk("json", "t", u64le(INT64_MAX) + u64le(static_cast<uint64_t>(INT64_MIN)) + u32le(0)));
}

void offset_tsv() {
  put("offset_tsv", "export", "g1\torders\t127.0.0.1:9876\t0\t12\ng1\torders\t127.0.0.1:9876\t1\t0\n");
  put("offset_tsv", "comments", "# undo file\n\ng1\t%RETRY%g1\tlocalhost:9876\t3\t9223372036854775807\r\n");
  put("offset_tsv", "bad-fields", "g1\torders\t127.0.0.1:9876\t0\n");
  put("offset_tsv", "bad-values",
      "g%\torders\th:1\t0\t1\ng\tor ders\th:1\t0\t1\ng\tt\t\t0\t1\ng\tt\th:1\t70000\t1\ng\tt\th:1\t0\t-1\n"
      "g\tt\th:1\t0\t9223372036854775808\ng\tt\th:1,h:2\t0\t1\n");
  put("offset_tsv", "ipv6", "g\tt\t[::1]:9876\t0\t5\n");
  put("offset_tsv", "no-newline", "g\tt\th:9876\t0\t5");
}

void parse_seeds() {
  auto p = [](int sel, std::string text) { return std::string(1, static_cast<char>(sel)) + text; };
  int n = 0;
  auto add = [&](int sel, std::string text) { put("parse", "p" + std::to_string(n++), p(sel, text)); };
  for (auto d : {"250ms", "5s", "15m", "2h", "3d", "0", "5", "-1s", "9223372036854775807ms", "106751991167d", "1x"})
    add(0, d);
  for (auto s : {"512", "64KiB", "4MiB", "1GiB", "10KB", "1k", "16777216T", "3 MiB", "18446744073709551615"}) add(1, s);
  for (auto t : {"2026-11-24T10:00:00Z", "2026-11-24T10:00:00.250+02:00", "2026-11-24 10:00", "2026-11-24 10:00:59",
                 "@1764000000", "-15m", "2026-02-30T00:00:00Z", "0000-01-01T00:00:00Z", "9999-12-31T23:59:60.999-23:59",
                 "2026-11-24T10:00:00.123456789z", "2026-11-24", "@1000000000000", "-9223372036854775807ms"})
    add(2, t);
  for (auto u : {"0", "42", "007", "18446744073709551615", "18446744073709551616", "+1", ""}) add(3, u);
  for (auto t : {"orders", "%RETRY%g1", "%DLQ%g", "%SCHEDULE%", "%X%y", "a b", ""}) add(4, t);
  add(4, std::string(128, 'a'));
  add(5, "group-1");
  add(5, std::string("\xff\xff\xff\xff\xff\xff\xff\x7f", 8));
  add(5, std::string("\x00\x00\x00\x00\x00\x00\x00\x80", 8));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz-gen-corpus DIR\n");
    return 2;
  }
  g_root = argv[1];
  records();
  recovery();
  protocol_seeds();
  json_input();
  message_format();
  offset_tsv();
  parse_seeds();
  return 0;
}

#include "protocol/replication_messages.h"

#include "util/bytes.h"

namespace mq::protocol {

void ReplicateRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.u64(pos);
  w.u32(max_bytes);
  w.u32(wait_ms);
  w.str16(slave_addr);
  if (has_tail) {
    w.u64(tail_from);
    w.u32(tail_crc);
  }
}

bool ReplicateRequest::decode(std::string_view in) {
  ByteReader r(in);
  if (!r.u64(pos) || !r.u32(max_bytes) || !r.u32(wait_ms) || !r.str16(slave_addr)) return false;
  has_tail = !r.at_end();
  tail_from = 0;
  tail_crc = 0;
  if (has_tail && !(r.u64(tail_from) && r.u32(tail_crc) && tail_from < pos)) return false;
  return r.at_end();
}

void ReplicateResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u64(pos);
  w.u8(new_segment ? 1 : 0);
  w.u64(master_end);
  w.u32(static_cast<uint32_t>(topics.size()));
  for (auto& [t, q] : topics) {
    w.str16(t);
    w.u32(q);
  }
  w.raw(records);
}

bool ReplicateResponse::decode(std::string_view in) {
  ByteReader r(in);
  uint8_t ns = 0;
  uint32_t n = 0;
  if (!r.u64(pos) || !r.u8(ns) || ns > 1 || !r.u64(master_end) || !r.u32(n)) return false;
  new_segment = ns == 1;
  topics.clear();
  for (uint32_t i = 0; i < n; ++i) {
    std::string t;
    uint32_t q = 0;
    if (!r.str16(t) || !r.u32(q)) return false;
    topics.emplace_back(std::move(t), q);
  }
  size_t used = in.size() - r.remaining();
  records.assign(in.substr(used));
  return true;
}

namespace {

constexpr uint32_t kMaxOffsets = 1u << 22;  // a decoder never reserves more than this

void put_offsets(ByteWriter& w, const std::vector<GroupOffset>& v) {
  w.u32(static_cast<uint32_t>(v.size()));
  for (auto& o : v) {
    w.str16(o.group);
    w.str16(o.q.topic);
    w.u32(o.q.queue);
    w.i64(o.offset);
    w.u32(o.epoch);
  }
}

bool get_offsets(ByteReader& r, std::vector<GroupOffset>& v) {
  uint32_t n = 0;
  if (!r.u32(n) || n > kMaxOffsets) return false;
  v.clear();
  for (uint32_t i = 0; i < n; ++i) {
    GroupOffset o;
    if (!r.str16(o.group) || !r.str16(o.q.topic) || !r.u32(o.q.queue) || !r.i64(o.offset) || !r.u32(o.epoch))
      return false;
    v.push_back(std::move(o));
  }
  return true;
}

}  // namespace

void SyncOffsetsRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.u64(known_version);
  put_offsets(w, offsets);
}

bool SyncOffsetsRequest::decode(std::string_view in) {
  ByteReader r(in);
  return r.u64(known_version) && get_offsets(r, offsets) && r.at_end();
}

void SyncOffsetsResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u64(version);
  w.u8(has_table ? 1 : 0);
  put_offsets(w, has_table ? offsets : std::vector<GroupOffset>{});
}

bool SyncOffsetsResponse::decode(std::string_view in) {
  ByteReader r(in);
  uint8_t t = 0;
  if (!r.u64(version) || !r.u8(t) || t > 1 || !get_offsets(r, offsets) || !r.at_end()) return false;
  has_table = t == 1;
  return has_table || offsets.empty();
}

void ReplicationStatusResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u64(log_end);
  w.u16(static_cast<uint16_t>(slaves.size()));
  for (auto& s : slaves) {
    w.str16(s.addr);
    w.u8(s.connected ? 1 : 0);
    w.u64(s.acked);
    w.u64(s.lag_bytes);
    w.u64(s.lag_ms);
  }
}

bool ReplicationStatusResponse::decode(std::string_view in) {
  ByteReader r(in);
  uint16_t n = 0;
  if (!r.u64(log_end) || !r.u16(n)) return false;
  slaves.clear();
  for (uint16_t i = 0; i < n; ++i) {
    SlaveStatus s;
    uint8_t c = 0;
    if (!r.str16(s.addr) || !r.u8(c) || c > 1 || !r.u64(s.acked) || !r.u64(s.lag_bytes) || !r.u64(s.lag_ms))
      return false;
    s.connected = c == 1;
    slaves.push_back(std::move(s));
  }
  return r.at_end();
}

}  // namespace mq::protocol

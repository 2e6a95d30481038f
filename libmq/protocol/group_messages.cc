#include "protocol/group_messages.h"

#include "util/bytes.h"

namespace mq::protocol {

std::string_view reserved_prop(std::string_view props_block) {
  ByteReader r(props_block);
  while (r.remaining() > 0) {
    std::string_view k, v;
    if (!r.str16(k) || !r.str32(v)) return {};
    if (!producer_may_set(k)) return k;
  }
  return {};
}
namespace {

void put(ByteWriter& w, const QueueRef& q) {
  w.str16(q.topic);
  w.u32(q.queue);
}
bool get(ByteReader& r, QueueRef& q) { return r.str16(q.topic) && r.u32(q.queue); }

void put(ByteWriter& w, const QueueProgress& p) {
  put(w, p.q);
  w.u64(p.committed);
  w.i64(p.lowest_in_flight);
  w.u64(p.in_flight_age_ms);
  w.u32(p.reconsume);
  w.u32(p.finished_behind);
}
bool get(ByteReader& r, QueueProgress& p) {
  return get(r, p.q) && r.u64(p.committed) && r.i64(p.lowest_in_flight) && r.u64(p.in_flight_age_ms) &&
         r.u32(p.reconsume) && r.u32(p.finished_behind);
}

void put(ByteWriter& w, const OffsetEntry& e) {
  put(w, e.q);
  w.i64(e.offset);
  w.u32(e.epoch);
}
bool get(ByteReader& r, OffsetEntry& e) { return get(r, e.q) && r.i64(e.offset) && r.u32(e.epoch); }

void put(ByteWriter& w, const std::string& s) { w.str16(s); }
bool get(ByteReader& r, std::string& s) { return r.str16(s); }

void put(ByteWriter& w, const MemberInfo& m);
bool get(ByteReader& r, MemberInfo& m);
void put(ByteWriter& w, const GroupInfo& g);
bool get(ByteReader& r, GroupInfo& g);

template <class T>
void put_list(ByteWriter& w, const std::vector<T>& v) {
  w.u16(static_cast<uint16_t>(v.size()));
  for (auto& x : v) put(w, x);
}
template <class T>
bool get_list(ByteReader& r, std::vector<T>& v) {
  uint16_t n;
  if (!r.u16(n)) return false;
  v.clear();
  v.reserve(std::min<size_t>(n, r.remaining() / 2));  // every element takes at least 2 bytes
  for (uint16_t i = 0; i < n; ++i) {
    T x{};
    if (!get(r, x)) return false;
    v.push_back(std::move(x));
  }
  return true;
}

void put(ByteWriter& w, const MemberInfo& m) {
  w.str16(m.client_id);
  w.str16(m.host);
  w.u32(m.pid);
  w.u64(m.idle_ms);
  put_list(w, m.owned);
}
bool get(ByteReader& r, MemberInfo& m) {
  return r.str16(m.client_id) && r.str16(m.host) && r.u32(m.pid) && r.u64(m.idle_ms) && get_list(r, m.owned);
}

void put(ByteWriter& w, const GroupInfo& g) {
  w.str16(g.group);
  put_list(w, g.members);
  put_list(w, g.offsets);
  put_list(w, g.progress);
}
bool get(ByteReader& r, GroupInfo& g) {
  return r.str16(g.group) && get_list(r, g.members) && get_list(r, g.offsets) && get_list(r, g.progress);
}

}  // namespace

void HeartbeatRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.str16(group);
  w.str16(client_id);
  w.str16(host);
  w.u32(pid);
  w.u8(orderly ? 1 : 0);
  put_list(w, topics);
  put_list(w, released);
  put_list(w, progress);
}
bool HeartbeatRequest::decode(std::string_view in) {
  ByteReader r(in);
  uint8_t o;
  if (!r.str16(group) || !r.str16(client_id) || !r.str16(host) || !r.u32(pid) || !r.u8(o)) return false;
  orderly = o != 0;
  return get_list(r, topics) && get_list(r, released) && get_list(r, progress) && r.at_end();
}

void HeartbeatResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u64(generation);
  w.u32(members);
  put_list(w, assigned);
  put_list(w, reset);
}
bool HeartbeatResponse::decode(std::string_view in) {
  ByteReader r(in);
  return r.u64(generation) && r.u32(members) && get_list(r, assigned) && get_list(r, reset) && r.at_end();
}

void QueryOffsetsRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.str16(group);
  put_list(w, queues);
}
bool QueryOffsetsRequest::decode(std::string_view in) {
  ByteReader r(in);
  return r.str16(group) && get_list(r, queues) && r.at_end();
}

void QueryOffsetsResponse::encode(std::string& out) const {
  ByteWriter w(out);
  put_list(w, entries);
}
bool QueryOffsetsResponse::decode(std::string_view in) {
  ByteReader r(in);
  return get_list(r, entries) && r.at_end();
}

void CommitRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.str16(group);
  w.str16(client_id);
  w.u8(init_only ? 1 : 0);
  put_list(w, entries);
}
bool CommitRequest::decode(std::string_view in) {
  ByteReader r(in);
  uint8_t io;
  if (!r.str16(group) || !r.str16(client_id) || !r.u8(io)) return false;
  init_only = io != 0;
  return get_list(r, entries) && r.at_end();
}

void CommitResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u16(static_cast<uint16_t>(results.size()));
  for (auto& c : results) {
    w.u8(c.accepted ? 1 : 0);
    w.i64(c.offset);
    w.u32(c.epoch);
  }
}
bool CommitResponse::decode(std::string_view in) {
  ByteReader r(in);
  uint16_t n;
  if (!r.u16(n) || n > r.remaining() / 13) return false;  // no allocation beyond the payload
  results.resize(n);
  for (auto& c : results) {
    uint8_t a;
    if (!r.u8(a) || !r.i64(c.offset) || !r.u32(c.epoch)) return false;
    c.accepted = a != 0;
  }
  return r.at_end();
}

void SendBackRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.str16(group);
  w.u32(max_retries);
  w.u8(dead_letter_now ? 1 : 0);
  w.str16(reason.substr(0, 1000));
  w.raw(record);
}
bool SendBackRequest::decode(std::string_view in) {
  ByteReader r(in);
  uint8_t d;
  if (!r.str16(group) || !r.u32(max_retries) || !r.u8(d) || !r.str16(reason)) return false;
  dead_letter_now = d != 0;
  std::string_view rest;
  if (!r.raw(r.remaining(), rest)) return false;
  record.assign(rest);
  return true;
}

void ResetRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.str16(group);
  w.u8(dry_run ? 1 : 0);
  w.u16(static_cast<uint16_t>(entries.size()));
  for (auto& e : entries) {
    put(w, e.q);
    w.i64(e.expected);
    w.i64(e.new_offset);
  }
}
bool ResetRequest::decode(std::string_view in) {
  ByteReader r(in);
  uint8_t d;
  uint16_t n;
  if (!r.str16(group) || !r.u8(d) || !r.u16(n) || n > r.remaining() / 22) return false;
  dry_run = d != 0;
  entries.resize(n);
  for (auto& e : entries)
    if (!get(r, e.q) || !r.i64(e.expected) || !r.i64(e.new_offset)) return false;
  return r.at_end();
}

void ResetResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u16(static_cast<uint16_t>(results.size()));
  for (auto& x : results) {
    w.u8(x.applied ? 1 : 0);
    w.i64(x.old_offset);
    w.i64(x.new_offset);
  }
}
bool ResetResponse::decode(std::string_view in) {
  ByteReader r(in);
  uint16_t n;
  if (!r.u16(n) || n > r.remaining() / 17) return false;
  results.resize(n);
  for (auto& x : results) {
    uint8_t a;
    if (!r.u8(a) || !r.i64(x.old_offset) || !r.i64(x.new_offset)) return false;
    x.applied = a != 0;
  }
  return r.at_end();
}

void GroupInfoResponse::encode(std::string& out) const {
  ByteWriter w(out);
  put_list(w, groups);
}
bool GroupInfoResponse::decode(std::string_view in) {
  ByteReader r(in);
  return get_list(r, groups) && r.at_end();
}

}  // namespace mq::protocol

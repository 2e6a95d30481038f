#include "protocol/messages.h"

#include "util/bytes.h"
#include "util/digest.h"

namespace mq::protocol {

void HelloResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u8(static_cast<uint8_t>(role));
  w.str16(version);
  w.str16(broker_addr);
  w.str16(master_addr);
  w.u16(static_cast<uint16_t>(slaves.size()));
  for (auto& s : slaves) w.str16(s);
  w.u32(max_message_size);
  w.u32(default_queues);
}

bool HelloResponse::decode(std::string_view in) {
  ByteReader r(in);
  uint8_t ro;
  uint16_t n;
  if (!r.u8(ro) || ro > 1 || !r.str16(version) || !r.str16(broker_addr) || !r.str16(master_addr) || !r.u16(n))
    return false;
  role = static_cast<Role>(ro);
  slaves.clear();
  for (uint16_t i = 0; i < n; ++i) {
    std::string s;
    if (!r.str16(s)) return false;
    slaves.push_back(std::move(s));
  }
  return r.u32(max_message_size) && r.u32(default_queues) && r.at_end();
}

void SendResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u32(static_cast<uint32_t>(placed.size()));
  for (auto& [q, o] : placed) {
    w.u32(q);
    w.u64(o);
  }
}

bool SendResponse::decode(std::string_view in) {
  ByteReader r(in);
  uint32_t n;
  if (!r.u32(n) || n > r.remaining() / 12) return false;
  placed.resize(n);
  for (auto& [q, o] : placed)
    if (!r.u32(q) || !r.u64(o)) return false;
  return r.at_end();
}

void PullRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.str16(topic);
  w.u32(queue);
  w.u64(offset);
  w.u32(max_msgs);
  w.u32(max_bytes);
  w.u32(wait_ms);
  w.u16(static_cast<uint16_t>(tag_hashes.size()));
  for (auto h : tag_hashes) w.u32(h);
}

bool PullRequest::decode(std::string_view in) {
  ByteReader r(in);
  uint16_t n;
  if (!r.str16(topic) || !r.u32(queue) || !r.u64(offset) || !r.u32(max_msgs) || !r.u32(max_bytes) ||
      !r.u32(wait_ms) || !r.u16(n) || n > r.remaining() / 4)  // no allocation beyond the payload
    return false;
  tag_hashes.resize(n);
  for (auto& h : tag_hashes)
    if (!r.u32(h)) return false;
  return r.at_end();
}

void PullResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u64(next_offset);
  w.u64(min_offset);
  w.u64(max_offset);
  w.u32(count);
  w.raw(records);
}

bool PullResponse::decode(std::string_view in) {
  ByteReader r(in);
  if (!r.u64(next_offset) || !r.u64(min_offset) || !r.u64(max_offset) || !r.u32(count)) return false;
  std::string_view rest;
  if (!r.raw(r.remaining(), rest)) return false;
  records.assign(rest);
  return true;
}

void TopicInfoResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.u32(static_cast<uint32_t>(topics.size()));
  for (auto& t : topics) {
    w.str16(t.topic);
    w.u32(static_cast<uint32_t>(t.queues.size()));
    for (auto& q : t.queues) {
      w.u32(q.queue);
      w.u64(q.min_offset);
      w.u64(q.max_offset);
      w.i64(q.newest_store_ms);
      w.u64(q.bytes);
    }
  }
}

bool TopicInfoResponse::decode(std::string_view in) {
  ByteReader r(in);
  uint32_t n;
  if (!r.u32(n) || n > r.remaining() / 6) return false;
  topics.resize(n);
  for (auto& t : topics) {
    uint32_t nq;
    if (!r.str16(t.topic) || !r.u32(nq) || nq > r.remaining() / 36) return false;
    t.queues.resize(nq);
    for (auto& q : t.queues)
      if (!r.u32(q.queue) || !r.u64(q.min_offset) || !r.u64(q.max_offset) || !r.i64(q.newest_store_ms) ||
          !r.u64(q.bytes))
        return false;
  }
  return r.at_end();
}

void OffsetForTimeRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.str16(topic);
  w.u32(queue);
  w.i64(ms);
}

bool OffsetForTimeRequest::decode(std::string_view in) {
  ByteReader r(in);
  return r.str16(topic) && r.u32(queue) && r.i64(ms) && r.at_end();
}

std::string encode_error(std::string_view message) {
  std::string out;
  ByteWriter w(out);
  w.str16(message.substr(0, 65535));
  return out;
}

void AuthChallengeResponse::encode(std::string& out) const {
  ByteWriter w(out);
  w.str16(nonce);
  w.u8(required ? 1 : 0);
}

bool AuthChallengeResponse::decode(std::string_view in) {
  ByteReader r(in);
  uint8_t req = 0;
  if (!r.str16(nonce) || !r.u8(req) || !r.at_end()) return false;
  required = req != 0;
  return true;
}

void AuthRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.str16(user);
  w.str16(proof);
}

bool AuthRequest::decode(std::string_view in) {
  ByteReader r(in);
  return r.str16(user) && r.str16(proof) && r.at_end();
}

std::string auth_key(std::string_view password) { return sha256(password); }

std::string auth_proof(std::string_view key, std::string_view user, std::string_view nonce) {
  std::string msg = "mq-auth-1";
  msg.push_back('\0');
  msg.append(user);
  msg.push_back('\0');
  msg.append(nonce);
  return hmac_sha256(key, msg);
}

}  // namespace mq::protocol

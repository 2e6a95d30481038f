// Payloads of the requests and responses. Each struct has encode (append to a
// string) and decode (from a payload; false when malformed — never trust the
// wire). Field order below is the wire order; see mq-protocol(5).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/frame.h"

namespace mq::protocol {

enum class Role : uint8_t { master = 0, slave = 1 };

// hello request: str16 client (e.g. "mq-send/0.1.0"). Response:
struct HelloResponse {
  Role role = Role::master;
  std::string version;              // str16
  std::string broker_addr;          // str16, the address this broker advertises
  std::string master_addr;          // str16, for a slave: its master; empty on a master
  std::vector<std::string> slaves;  // u16 n, str16 each: connected slaves' advertised addresses
  uint32_t max_message_size = 0;
  uint32_t default_queues = 0;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// send request: u32 count, then `count` encoded records back to back (the
// record format of mq-data(5); topic and queue set, offset/store time 0).
// Response payload on ok/flush statuses: u32 count, then per record u32 queue, u64 offset.
struct SendResponse {
  std::vector<std::pair<uint32_t, uint64_t>> placed;  // (queue, offset), in request order
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

struct PullRequest {
  std::string topic;         // str16
  uint32_t queue = 0;
  uint64_t offset = 0;
  uint32_t max_msgs = 1000;
  uint32_t max_bytes = 4u << 20;
  uint32_t wait_ms = 0;      // long-poll: hold up to this long when nothing is there
  std::vector<uint32_t> tag_hashes;  // u16 n, u32 each; empty = all
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// Response: u64 next_offset, u64 min_offset, u64 max_offset, u32 count, records.
struct PullResponse {
  uint64_t next_offset = 0, min_offset = 0, max_offset = 0;
  uint32_t count = 0;
  std::string records;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// topic_info request: str16 topic ("" = every topic, reserved ones included).
struct QueueStat {
  uint32_t queue = 0;
  uint64_t min_offset = 0, max_offset = 0;
  int64_t newest_store_ms = 0;
  uint64_t bytes = 0;
};
struct TopicStat {
  std::string topic;
  std::vector<QueueStat> queues;  // u32 n
};
// Response: u32 n topics; per topic str16 name, u32 n queues, per queue u32 queue, u64 min,
// u64 max, i64 newest, u64 bytes.
struct TopicInfoResponse {
  std::vector<TopicStat> topics;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// offset_for_time request: str16 topic, u32 queue, i64 ms. Response: u64 offset.
struct OffsetForTimeRequest {
  std::string topic;
  uint32_t queue = 0;
  int64_t ms = 0;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

std::string encode_error(std::string_view message);  // str16 message

// auth_challenge request: empty. Response: str16 nonce (32 random bytes, new
// for every challenge), u8 required (1: the broker checks credentials).
struct AuthChallengeResponse {
  std::string nonce;
  bool required = false;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// auth request: str16 user, str16 proof. Response: ok, or denied with a message.
struct AuthRequest {
  std::string user;
  std::string proof;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// The key both sides hold: SHA-256 of the password (the broker's --auth file
// may store it instead of the password, as sha256:HEX).
std::string auth_key(std::string_view password);
// HMAC-SHA-256 under `key` of "mq-auth-1", the user and the nonce: proves
// the password without sending it, and cannot be replayed on another connection.
std::string auth_proof(std::string_view key, std::string_view user, std::string_view nonce);

}  // namespace mq::protocol

// Wire frames. Every request and response is one frame. See mq-protocol(5).
//
//   0  u32 length      bytes after this field: 12 header bytes + payload
//   4  u8  version     kProtocolVersion
//   5  u8  type        Type
//   6  u16 flags       kFlagResponse | kFlagOneway
//   8  u32 request_id  chosen by the requester, echoed in the response
//  12  u16 status      responses: Code; requests: 0
//  14  u16 reserved    0
//  16  payload
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "util/status.h"

namespace mq::protocol {

inline constexpr uint8_t kProtocolVersion = 1;
inline constexpr size_t kFrameHeaderSize = 16;
inline constexpr uint32_t kDefaultMaxFrame = 64u << 20;
// What a message carries besides its body: key and tag (16-bit lengths), topic, the record
// header and its properties, at most kMaxPropsBytes as a producer gives them (encoded) and
// kMaxPropsStored with what the broker and mq-replay add (retry counts, provenance).
inline constexpr uint32_t kMaxPropsBytes = 64u << 10;
inline constexpr uint32_t kMaxPropsStored = kMaxPropsBytes + (4u << 10);
// --max-frame exceeds --max-message-size by at least this much, so that a send of one message
// at every limit at once fits a frame (about 200 KiB besides the body), and a producer's batch
// of several stays within max_message_size + kFrameMargin / 2.
inline constexpr uint32_t kFrameMargin = 256u << 10;
inline constexpr uint16_t kFlagResponse = 1;
inline constexpr uint16_t kFlagOneway = 2;  // no response is sent

enum class Type : uint8_t {
  hello = 1,            // who are you: role, peers, limits
  send = 2,             // a batch of records
  pull = 3,             // read a queue from an offset, optionally long-polling
  topic_info = 4,       // queues and offsets of one or every topic
  offset_for_time = 5,  // first offset at or after a store time
  heartbeat = 6,        // consumer group membership (consumer groups issue)
  commit_offsets = 7,
  query_offsets = 8,
  send_back = 9,        // failed message back for delayed retry / DLQ
  lock_queue = 10,      // orderly consumption
  group_info = 11,
  reset_offsets = 12,
  replicate = 13,       // slave -> master: stream the log from a position
  replica_ack = 14,
  auth_challenge = 15,  // a fresh nonce for this connection
  auth = 16,            // user + proof of the password over that nonce
  sync_offsets = 17,    // slave <-> master: consumer offsets and delay progress, merged
  replication_status = 18,  // the master's slaves and how far behind each is
};
// The highest type defined (move it along when one is added): above it, or 0,
// a request type is unknown to the protocol.
inline constexpr Type kLastType = Type::replication_status;

// Response status. The first four are SPEC's send statuses.
enum class Code : uint16_t {
  ok = 0,                    // SEND_OK
  flush_disk_timeout = 1,
  flush_slave_timeout = 2,
  slave_not_available = 3,
  bad_request = 20,          // payload did not decode / invalid values
  topic_not_found = 21,
  not_master = 22,           // writes go to masters
  disk_full = 23,
  io_error = 24,
  message_too_large = 25,
  denied = 26,
  unknown_type = 27,
  busy = 28,
  conflict = 29,             // compare-and-set lost
  internal = 30,
  too_many_topics = 31,      // a new topic past the broker's --max-topics
  corrupt_record = 32,       // a sent record's checksum did not match: damaged on the way, send again
};

std::string_view code_name(Code c);  // "SEND_OK", "FLUSH_DISK_TIMEOUT", ..., "DISK_FULL"
// An error response's payload is a str16 message; turn it into a Status.
Status status_from_response(Code c, std::string_view payload);
Code code_from_status(const Status& s);

struct FrameHeader {
  uint32_t length = 0;
  uint8_t version = kProtocolVersion;
  Type type{};
  uint16_t flags = 0;
  uint32_t request_id = 0;
  Code status = Code::ok;
};

struct Frame {
  FrameHeader header;
  std::string payload;
};

// Appends header + payload to out.
void encode_frame(std::string& out, Type type, uint16_t flags, uint32_t request_id, Code status,
                  std::string_view payload);
// Writes a header for a payload of `payload_len` bytes at `at` (16 bytes), for
// callers that build the payload in place after reserving the header.
void write_frame_header(char* at, Type type, uint16_t flags, uint32_t request_id, Code status,
                        size_t payload_len);

// Incremental decoder: feed bytes as they arrive, take whole frames out.
// Errors (wrong version, length below the header, above max_frame) are final
// for the connection.
class FrameDecoder {
 public:
  explicit FrameDecoder(uint32_t max_frame = kDefaultMaxFrame) : max_frame_(max_frame) {}
  void feed(std::string_view bytes) { buf_.append(bytes); }
  // Where to read new bytes into directly (avoids a copy): reserve n, then commit(k).
  char* prepare(size_t n);
  void commit(size_t n);
  enum class State { frame, need_more, error };
  // On `frame` fills out; on `error` sets error().
  State next(Frame& out);
  const std::string& error() const { return error_; }
  size_t buffered() const { return buf_.size() - pos_; }
  void set_max_frame(uint32_t max_frame) { max_frame_ = max_frame; }

 private:
  std::string buf_;
  size_t pos_ = 0;
  size_t committed_ = 0;
  uint32_t max_frame_;
  std::string error_;
};

}  // namespace mq::protocol

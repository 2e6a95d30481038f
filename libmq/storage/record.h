// The record format: one message as stored in the commit log, shipped in pull
// results and replicated byte for byte. Send requests carry the same encoding
// (queue, offset and store time are filled in by the broker). See mq-data(5).
//
// Layout, little-endian, no padding:
//   0  u32 size          whole record, this field included
//   4  u32 crc           CRC32C of bytes [8, size)
//   8  u8  magic         kRecordMagic
//   9  u8  flags         reserved, 0
//  10  u16 topic_len
//  12  u32 queue
//  16  u64 queue_offset
//  24  u8[16] msg_id
//  40  i64 born_ms
//  48  i64 store_ms
//  56  u32 reconsume     delivery attempts before this one (retries)
//  60  u16 key_len
//  62  u16 tag_len
//  64  u32 props_len
//  68  u32 body_len
//  72  topic, key, tag, props, body
// props: repeated { u16 name_len, name, u32 value_len, value }.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace mq::storage {

inline constexpr uint8_t kRecordMagic = 0xA7;
inline constexpr size_t kRecordHeaderSize = 72;
inline constexpr size_t kOffSize = 0, kOffCrc = 4, kOffMagic = 8, kOffFlags = 9, kOffTopicLen = 10,
                        kOffQueue = 12, kOffQueueOffset = 16, kOffMsgId = 24, kOffBorn = 40,
                        kOffStore = 48, kOffReconsume = 56, kOffKeyLen = 60, kOffTagLen = 62,
                        kOffPropsLen = 64, kOffBodyLen = 68;
// Upper bound on any record, whatever --max-message-size says: a length field
// above it is corruption, not a big message.
inline constexpr uint32_t kMaxRecordSize = 256u << 20;

using MessageId = std::array<uint8_t, 16>;
using Properties = std::vector<std::pair<std::string, std::string>>;

struct Message {
  std::string topic;
  uint32_t queue = 0;
  uint64_t offset = 0;
  MessageId id{};
  int64_t born_ms = 0;
  int64_t store_ms = 0;
  uint32_t reconsume = 0;
  std::string key;
  std::string tag;
  Properties props;
  std::string body;

  const std::string* prop(std::string_view name) const;
  void set_prop(std::string_view name, std::string_view value);
  void erase_prop(std::string_view name);
};

// A decoded record that points into the buffer it came from (no copies).
struct RecordView {
  std::string_view bytes;  // the whole record
  std::string_view topic, key, tag, props, body;
  uint32_t queue = 0;
  uint64_t offset = 0;
  MessageId id{};
  int64_t born_ms = 0, store_ms = 0;
  uint32_t reconsume = 0;

  Message to_message() const;
  // Looks up one property in the encoded props block.
  bool prop(std::string_view name, std::string_view& value) const;
};

size_t encoded_size(const Message& m);
// Appends the encoded record (CRC included) to out.
void encode_record(const Message& m, std::string& out);

enum class DecodeResult { ok, need_more, bad };
// The reason decode_record gives when the CRC32C does not match: the bytes were
// damaged (on disk, or on the way from a client, who may send them again).
inline constexpr std::string_view kChecksumMismatch = "record checksum mismatch";
// Decodes the record at the start of `in`. need_more: `in` is a proper prefix
// of a record that looks valid so far (a torn tail); bad: not a record (wrong
// magic, lengths that do not add up, CRC mismatch). `why` says what was wrong.
DecodeResult decode_record(std::string_view in, RecordView& out, std::string* why = nullptr);
// Same checks, returning a Status naming the cause; for callers that have a whole record.
Result<RecordView> parse_record(std::string_view in);
// The fields of a record that decode_record accepted before (in this process, the
// bytes unchanged since): its lengths are checked again, its checksum and properties
// are not. False: not a whole record.
bool view_record(std::string_view in, RecordView& out);

// Rewrites queue, offset and store time of an encoded record in place and
// recomputes its CRC (the broker does this on append).
void stamp_record(char* rec, uint32_t queue, uint64_t offset, int64_t store_ms);
void set_record_reconsume(char* rec, uint32_t reconsume);
uint32_t record_crc(std::string_view rec);

// Properties block helpers.
void encode_props(const Properties& p, std::string& out);
bool decode_props(std::string_view block, Properties& out);

// 32 lowercase hex characters.
std::string id_to_hex(const MessageId& id);
bool id_from_hex(std::string_view hex, MessageId& id);

// Hash of a tag for the queue index (0 = no tag).
uint32_t tag_hash(std::string_view tag);

}  // namespace mq::storage

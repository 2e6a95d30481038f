#include "storage/record.h"

#include "util/bytes.h"
#include "util/crc32c.h"

namespace mq::storage {

const std::string* Message::prop(std::string_view name) const {
  for (auto& [k, v] : props)
    if (k == name) return &v;
  return nullptr;
}

void Message::set_prop(std::string_view name, std::string_view value) {
  for (auto& [k, v] : props)
    if (k == name) {
      v.assign(value);
      return;
    }
  props.emplace_back(std::string(name), std::string(value));
}

void Message::erase_prop(std::string_view name) {
  std::erase_if(props, [&](auto& kv) { return kv.first == name; });
}

size_t encoded_size(const Message& m) {
  size_t n = kRecordHeaderSize + m.topic.size() + m.key.size() + m.tag.size() + m.body.size();
  for (auto& [k, v] : m.props) n += 2 + k.size() + 4 + v.size();
  return n;
}

void encode_props(const Properties& p, std::string& out) {
  ByteWriter w(out);
  for (auto& [k, v] : p) {
    w.str16(k);
    w.str32(v);
  }
}

bool decode_props(std::string_view block, Properties& out) {
  ByteReader r(block);
  while (r.remaining() > 0) {
    std::string k, v;
    if (!r.str16(k) || !r.str32(v)) return false;
    out.emplace_back(std::move(k), std::move(v));
  }
  return r.ok();
}

void encode_record(const Message& m, std::string& out) {
  size_t start = out.size();
  size_t props_len = 0;
  for (auto& [k, v] : m.props) props_len += 2 + k.size() + 4 + v.size();
  size_t total = kRecordHeaderSize + m.topic.size() + m.key.size() + m.tag.size() + props_len + m.body.size();
  out.reserve(start + total);  // one allocation, not one per append
  out.resize(start + kRecordHeaderSize);
  char* h = out.data() + start;
  store_u32(h + kOffSize, static_cast<uint32_t>(total));
  h[kOffMagic] = static_cast<char>(kRecordMagic);
  h[kOffFlags] = 0;
  store_u16(h + kOffTopicLen, static_cast<uint16_t>(m.topic.size()));
  store_u32(h + kOffQueue, m.queue);
  store_u64(h + kOffQueueOffset, m.offset);
  std::memcpy(h + kOffMsgId, m.id.data(), 16);
  store_u64(h + kOffBorn, static_cast<uint64_t>(m.born_ms));
  store_u64(h + kOffStore, static_cast<uint64_t>(m.store_ms));
  store_u32(h + kOffReconsume, m.reconsume);
  store_u16(h + kOffKeyLen, static_cast<uint16_t>(m.key.size()));
  store_u16(h + kOffTagLen, static_cast<uint16_t>(m.tag.size()));
  store_u32(h + kOffPropsLen, static_cast<uint32_t>(props_len));
  store_u32(h + kOffBodyLen, static_cast<uint32_t>(m.body.size()));
  out.append(m.topic);
  out.append(m.key);
  out.append(m.tag);
  encode_props(m.props, out);
  out.append(m.body);
  char* rec = out.data() + start;
  store_u32(rec + kOffCrc, crc32c(rec + 8, total - 8));
}

namespace {

// The fields of a record whose lengths were checked.
void fill_view(std::string_view in, uint32_t size, RecordView& o) {
  const char* p = in.data();
  uint64_t topic_len = load_u16(p + kOffTopicLen), key_len = load_u16(p + kOffKeyLen),
           tag_len = load_u16(p + kOffTagLen), props_len = load_u32(p + kOffPropsLen),
           body_len = load_u32(p + kOffBodyLen);
  o.bytes = in.substr(0, size);
  size_t pos = kRecordHeaderSize;
  o.topic = in.substr(pos, topic_len); pos += topic_len;
  o.key = in.substr(pos, key_len); pos += key_len;
  o.tag = in.substr(pos, tag_len); pos += tag_len;
  o.props = in.substr(pos, props_len); pos += props_len;
  o.body = in.substr(pos, body_len);
  o.queue = load_u32(p + kOffQueue);
  o.offset = load_u64(p + kOffQueueOffset);
  std::memcpy(o.id.data(), p + kOffMsgId, 16);
  o.born_ms = static_cast<int64_t>(load_u64(p + kOffBorn));
  o.store_ms = static_cast<int64_t>(load_u64(p + kOffStore));
  o.reconsume = load_u32(p + kOffReconsume);
}

}  // namespace

DecodeResult decode_record(std::string_view in, RecordView& o, std::string* why) {
  auto fail = [&](std::string_view w) {
    if (why) *why = w;
    return DecodeResult::bad;
  };
  if (in.size() < 4) return DecodeResult::need_more;
  const char* p = in.data();
  uint32_t size = load_u32(p);
  if (size < kRecordHeaderSize) return fail("record size below the header size");
  if (size > kMaxRecordSize) return fail("record size above the maximum");
  if (in.size() >= kOffMagic + 1 && static_cast<uint8_t>(p[kOffMagic]) != kRecordMagic) return fail("bad record magic");
  if (in.size() < kRecordHeaderSize) return DecodeResult::need_more;
  uint64_t topic_len = load_u16(p + kOffTopicLen), key_len = load_u16(p + kOffKeyLen),
           tag_len = load_u16(p + kOffTagLen), props_len = load_u32(p + kOffPropsLen),
           body_len = load_u32(p + kOffBodyLen);
  if (kRecordHeaderSize + topic_len + key_len + tag_len + props_len + body_len != size)
    return fail("record lengths do not add up");
  if (in.size() < size) return DecodeResult::need_more;
  if (crc32c(p + 8, size - 8) != load_u32(p + kOffCrc)) return fail(kChecksumMismatch);
  fill_view(in, size, o);
  Properties tmp;
  if (!decode_props(o.props, tmp)) return fail("malformed properties block");
  return DecodeResult::ok;
}

bool view_record(std::string_view in, RecordView& o) {
  if (in.size() < kRecordHeaderSize) return false;
  const char* p = in.data();
  uint32_t size = load_u32(p);
  uint64_t fields = uint64_t{load_u16(p + kOffTopicLen)} + load_u16(p + kOffKeyLen) + load_u16(p + kOffTagLen) +
                    load_u32(p + kOffPropsLen) + load_u32(p + kOffBodyLen);
  if (size > in.size() || kRecordHeaderSize + fields != size) return false;
  fill_view(in, size, o);
  return true;
}

Result<RecordView> parse_record(std::string_view in) {
  RecordView v;
  std::string why;
  switch (decode_record(in, v, &why)) {
    case DecodeResult::ok:
      return v;
    case DecodeResult::need_more:
      return Status::corruption("truncated record");
    case DecodeResult::bad:
      break;
  }
  return Status::corruption(why);
}

Message RecordView::to_message() const {
  Message m;
  m.topic.assign(topic);
  m.queue = queue;
  m.offset = offset;
  m.id = id;
  m.born_ms = born_ms;
  m.store_ms = store_ms;
  m.reconsume = reconsume;
  m.key.assign(key);
  m.tag.assign(tag);
  decode_props(props, m.props);
  m.body.assign(body);
  return m;
}

bool RecordView::prop(std::string_view name, std::string_view& value) const {
  ByteReader r(props);
  while (r.remaining() > 0) {
    std::string_view k, v;
    if (!r.str16(k) || !r.str32(v)) return false;
    if (k == name) {
      value = v;
      return true;
    }
  }
  return false;
}

void stamp_record(char* rec, uint32_t queue, uint64_t offset, int64_t store_ms) {
  store_u32(rec + kOffQueue, queue);
  store_u64(rec + kOffQueueOffset, offset);
  store_u64(rec + kOffStore, static_cast<uint64_t>(store_ms));
  uint32_t size = load_u32(rec);
  store_u32(rec + kOffCrc, crc32c(rec + 8, size - 8));
}

void set_record_reconsume(char* rec, uint32_t reconsume) {
  store_u32(rec + kOffReconsume, reconsume);
  uint32_t size = load_u32(rec);
  store_u32(rec + kOffCrc, crc32c(rec + 8, size - 8));
}

uint32_t record_crc(std::string_view rec) { return load_u32(rec.data() + kOffCrc); }

std::string id_to_hex(const MessageId& id) {
  static const char* d = "0123456789abcdef";
  std::string s(32, '0');
  for (size_t i = 0; i < 16; ++i) {
    s[2 * i] = d[id[i] >> 4];
    s[2 * i + 1] = d[id[i] & 15];
  }
  return s;
}

bool id_from_hex(std::string_view hex, MessageId& id) {
  if (hex.size() != 32) return false;
  auto val = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < 16; ++i) {
    int hi = val(hex[2 * i]), lo = val(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    id[i] = static_cast<uint8_t>(hi * 16 + lo);
  }
  return true;
}

uint32_t tag_hash(std::string_view tag) { return tag.empty() ? 0 : (crc32c(tag) | 1u); }

}  // namespace mq::storage

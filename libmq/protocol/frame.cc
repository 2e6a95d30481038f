#include "protocol/frame.h"

#include "util/bytes.h"

namespace mq::protocol {

std::string_view code_name(Code c) {
  switch (c) {
    case Code::ok: return "SEND_OK";
    case Code::flush_disk_timeout: return "FLUSH_DISK_TIMEOUT";
    case Code::flush_slave_timeout: return "FLUSH_SLAVE_TIMEOUT";
    case Code::slave_not_available: return "SLAVE_NOT_AVAILABLE";
    case Code::bad_request: return "BAD_REQUEST";
    case Code::topic_not_found: return "TOPIC_NOT_FOUND";
    case Code::not_master: return "NOT_MASTER";
    case Code::disk_full: return "DISK_FULL";
    case Code::io_error: return "IO_ERROR";
    case Code::message_too_large: return "MESSAGE_TOO_LARGE";
    case Code::denied: return "DENIED";
    case Code::unknown_type: return "UNKNOWN_TYPE";
    case Code::busy: return "BUSY";
    case Code::conflict: return "CONFLICT";
    case Code::internal: return "INTERNAL";
    case Code::too_many_topics: return "TOO_MANY_TOPICS";
    case Code::corrupt_record: return "CORRUPT_RECORD";
  }
  return "UNKNOWN";
}

Status status_from_response(Code c, std::string_view payload) {
  ByteReader r(payload);
  std::string msg;
  if (!r.str16(msg) || msg.empty()) msg = std::string(code_name(c));
  switch (c) {
    case Code::ok: return Status::ok();
    case Code::bad_request:
    case Code::message_too_large: return Status::invalid(msg);
    case Code::topic_not_found: return Status::not_found(msg);
    case Code::disk_full: return {mq::Code::disk_full, msg};
    case Code::io_error: return Status::io_error(msg);
    case Code::denied: return {mq::Code::permission_denied, msg};
    case Code::too_many_topics: return Status::limit_reached(msg);
    case Code::flush_disk_timeout:
    case Code::flush_slave_timeout: return Status::timeout(msg);
    default: return Status::unavailable(msg);
  }
}

Code code_from_status(const Status& s) {
  switch (s.code()) {
    case mq::Code::ok: return Code::ok;
    case mq::Code::invalid_argument: return Code::bad_request;
    case mq::Code::not_found: return Code::topic_not_found;
    case mq::Code::disk_full: return Code::disk_full;
    case mq::Code::io_error:
    case mq::Code::corruption: return Code::io_error;
    case mq::Code::permission_denied: return Code::denied;
    case mq::Code::limit_reached: return Code::too_many_topics;  // the only limit of its kind
    case mq::Code::timeout: return Code::flush_disk_timeout;
    case mq::Code::unavailable: return Code::busy;
    case mq::Code::interrupted: return Code::internal;
  }
  return Code::internal;
}

void write_frame_header(char* at, Type type, uint16_t flags, uint32_t request_id, Code status,
                        size_t payload_len) {
  store_u32(at, static_cast<uint32_t>(kFrameHeaderSize - 4 + payload_len));
  at[4] = static_cast<char>(kProtocolVersion);
  at[5] = static_cast<char>(type);
  store_u16(at + 6, flags);
  store_u32(at + 8, request_id);
  store_u16(at + 12, static_cast<uint16_t>(status));
  store_u16(at + 14, 0);
}

void encode_frame(std::string& out, Type type, uint16_t flags, uint32_t request_id, Code status,
                  std::string_view payload) {
  size_t at = out.size();
  out.resize(at + kFrameHeaderSize);
  write_frame_header(out.data() + at, type, flags, request_id, status, payload.size());
  out.append(payload);
}

char* FrameDecoder::prepare(size_t n) {
  if (pos_ > 0 && pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  } else if (pos_ > (1u << 20) && pos_ * 2 > buf_.size()) {
    buf_.erase(0, pos_);
    pos_ = 0;
  }
  committed_ = buf_.size();
  buf_.resize(committed_ + n);
  return buf_.data() + committed_;
}

void FrameDecoder::commit(size_t n) { buf_.resize(committed_ + n); }

namespace {
// Another protocol's first bytes, said as such: a TLS record (handshake 0x16, version
// 3.x) or HTTP. p holds at least 4 bytes.
std::string_view other_protocol(const char* p) {
  std::string_view w(p, 4);
  if (p[0] == 0x16 && p[1] == 0x03) return " (the bytes look like a TLS handshake: this broker does not serve TLS)";
  if (w == "GET " || w == "POST" || w == "HTTP" || w == "PUT " || w == "HEAD") return " (the bytes look like HTTP)";
  return {};
}
}  // namespace

FrameDecoder::State FrameDecoder::next(Frame& out) {
  if (!error_.empty()) return State::error;
  size_t avail = buf_.size() - pos_;
  if (avail < 4) return State::need_more;
  const char* p = buf_.data() + pos_;
  uint32_t len = load_u32(p);
  if (len < kFrameHeaderSize - 4) {
    error_ = fmt::format("frame length {} below the header size", len);
    return State::error;
  }
  if (len > max_frame_) {
    error_ = fmt::format("frame of {} bytes exceeds the limit of {}{}", len, max_frame_, other_protocol(p));
    return State::error;
  }
  if (avail >= 5 && static_cast<uint8_t>(p[4]) != kProtocolVersion) {
    error_ = fmt::format("unsupported protocol version {}{}", static_cast<uint8_t>(p[4]), other_protocol(p));
    return State::error;
  }
  if (avail < 4 + static_cast<size_t>(len)) return State::need_more;
  out.header.length = len;
  out.header.version = static_cast<uint8_t>(p[4]);
  out.header.type = static_cast<Type>(static_cast<uint8_t>(p[5]));
  out.header.flags = load_u16(p + 6);
  out.header.request_id = load_u32(p + 8);
  out.header.status = static_cast<Code>(load_u16(p + 12));
  out.payload.assign(p + kFrameHeaderSize, len + 4 - kFrameHeaderSize);
  pos_ += 4 + len;
  if (pos_ == buf_.size()) {
    buf_.clear();
    pos_ = 0;
  }
  return State::frame;
}

}  // namespace mq::protocol

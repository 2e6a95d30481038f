// Little-endian byte coding used by the record format and the wire protocol.
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <string>
#include <string_view>

namespace mq {

inline void store_u16(char* p, uint16_t v) { std::memcpy(p, &v, 2); }
inline void store_u32(char* p, uint32_t v) { std::memcpy(p, &v, 4); }
inline void store_u64(char* p, uint64_t v) { std::memcpy(p, &v, 8); }
inline uint16_t load_u16(const char* p) { uint16_t v; std::memcpy(&v, p, 2); return v; }
inline uint32_t load_u32(const char* p) { uint32_t v; std::memcpy(&v, p, 4); return v; }
inline uint64_t load_u64(const char* p) { uint64_t v; std::memcpy(&v, p, 8); return v; }
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "mq's formats are little-endian");

// Appends fixed-width integers and length-prefixed strings to a std::string.
class ByteWriter {
 public:
  explicit ByteWriter(std::string& out) : out_(out) {}
  void u8(uint8_t v) { out_.push_back(static_cast<char>(v)); }
  void u16(uint16_t v) { char b[2]; store_u16(b, v); out_.append(b, 2); }
  void u32(uint32_t v) { char b[4]; store_u32(b, v); out_.append(b, 4); }
  void u64(uint64_t v) { char b[8]; store_u64(b, v); out_.append(b, 8); }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void raw(std::string_view s) { out_.append(s); }
  void str16(std::string_view s) { u16(static_cast<uint16_t>(s.size())); raw(s); }
  void str32(std::string_view s) { u32(static_cast<uint32_t>(s.size())); raw(s); }
  std::string& buffer() { return out_; }

 private:
  std::string& out_;
};

// Reads from a bounded view; every read checks the remaining length, so bytes
// from disk or the wire can never read past the end. After a failed read
// ok() is false and every later read fails too.
class ByteReader {
 public:
  explicit ByteReader(std::string_view in) : in_(in) {}
  bool u8(uint8_t& v) { if (!need(1)) return false; v = static_cast<uint8_t>(in_[pos_]); pos_ += 1; return true; }
  bool u16(uint16_t& v) { if (!need(2)) return false; v = load_u16(in_.data() + pos_); pos_ += 2; return true; }
  bool u32(uint32_t& v) { if (!need(4)) return false; v = load_u32(in_.data() + pos_); pos_ += 4; return true; }
  bool u64(uint64_t& v) { if (!need(8)) return false; v = load_u64(in_.data() + pos_); pos_ += 8; return true; }
  bool i64(int64_t& v) { uint64_t u; if (!u64(u)) return false; v = static_cast<int64_t>(u); return true; }
  bool raw(size_t n, std::string_view& v) { if (!need(n)) return false; v = in_.substr(pos_, n); pos_ += n; return true; }
  bool str16(std::string_view& v) { uint16_t n; return u16(n) && raw(n, v); }
  bool str32(std::string_view& v) { uint32_t n; return u32(n) && raw(n, v); }
  bool str16(std::string& v) { std::string_view s; if (!str16(s)) return false; v.assign(s); return true; }
  bool str32(std::string& v) { std::string_view s; if (!str32(s)) return false; v.assign(s); return true; }
  size_t remaining() const { return ok_ ? in_.size() - pos_ : 0; }
  size_t position() const { return pos_; }
  bool ok() const { return ok_; }
  bool at_end() const { return ok_ && pos_ == in_.size(); }

 private:
  bool need(size_t n) {
    if (!ok_ || in_.size() - pos_ < n) { ok_ = false; return false; }
    return true;
  }
  std::string_view in_;
  size_t pos_ = 0;
  bool ok_ = true;
};

}  // namespace mq

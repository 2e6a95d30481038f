#include "protocol/replication_messages.h"

#include "util/bytes.h"

namespace mq::protocol {

void ReplicateRequest::encode(std::string& out) const {
  ByteWriter w(out);
  w.u64(pos);
  w.u32(max_bytes);
  w.u32(wait_ms);
  w.str16(slave_addr);
}

bool ReplicateRequest::decode(std::string_view in) {
  ByteReader r(in);
  return r.u64(pos) && r.u32(max_bytes) && r.u32(wait_ms) && r.str16(slave_addr) && r.at_end();
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

}  // namespace mq::protocol

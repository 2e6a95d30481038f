// Payloads of the replication requests (slave -> master). See mq-protocol(5).
//
// The slave pulls the master's commit log with `replicate` requests, long-poll
// style: each request says where the slave's log ends (everything below it is
// fdatasync'd on the slave, so it doubles as the acknowledgement that sync
// replication waits for) and the master answers with the raw log bytes from
// there, or parks the request until bytes become visible or `wait_ms` ends.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace mq::protocol {

// replicate request: u64 pos, u32 max_bytes, u32 wait_ms, str16 slave_addr.
struct ReplicateRequest {
  uint64_t pos = 0;             // the slave's log end; durable on the slave
  uint32_t max_bytes = 4u << 20;
  uint32_t wait_ms = 1000;
  std::string slave_addr;       // the address the slave serves clients on
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// Response: u64 pos, u8 new_segment, u64 master_end, u32 n topics (str16 name,
// u32 queues), then the raw log bytes (whole records) to the end of the payload.
struct ReplicateResponse {
  uint64_t pos = 0;             // where `records` starts (= the request's pos)
  bool new_segment = false;     // a master segment starts at pos
  uint64_t master_end = 0;      // the master's visible log end when answering
  std::vector<std::pair<std::string, uint32_t>> topics;  // topics of the records
  std::string records;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

}  // namespace mq::protocol

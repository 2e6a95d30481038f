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

#include "protocol/group_messages.h"

namespace mq::protocol {

// replicate request: u64 pos, u32 max_bytes, u32 wait_ms, str16 slave_addr, then
// optionally u64 tail_from, u32 tail_crc.
struct ReplicateRequest {
  uint64_t pos = 0;             // the slave's log end; durable on the slave
  uint32_t max_bytes = 4u << 20;
  uint32_t wait_ms = 1000;
  std::string slave_addr;       // the address the slave serves clients on
  // The CRC32C of the slave's log bytes [tail_from, pos): a master whose bytes there
  // differ holds another log (replaced data, another master's), and refuses the slave.
  bool has_tail = false;
  uint64_t tail_from = 0;
  uint32_t tail_crc = 0;
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

// One committed offset of the offset table: group, _ref_, i64 offset, u32 epoch.
struct GroupOffset {
  std::string group;
  QueueRef q;
  int64_t offset = -1;
  uint32_t epoch = 0;
  bool operator==(const GroupOffset&) const = default;
};

// sync_offsets request (slave -> master, every 500 ms): u64 the version of
// the master's table the slave last received (kNoVersion = none, e.g. after
// a reconnect), u32 n and n offsets the slave holds above what it last
// received (consumers committed them to the slave while the master was
// away). Both sides merge with the same rule (OffsetTable::merge).
inline constexpr uint64_t kNoVersion = ~uint64_t{0};
struct SyncOffsetsRequest {
  uint64_t known_version = kNoVersion;
  std::vector<GroupOffset> offsets;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// Response: u64 the master's table version, u8 whole table follows (0 when
// the version is the one the slave knows), u32 n and n offsets (every entry,
// %SCHEDULE% progress of the delay levels included).
struct SyncOffsetsResponse {
  uint64_t version = 0;
  bool has_table = false;
  std::vector<GroupOffset> offsets;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// replication_status request: empty. Response: u64 the master's log end, u16 n
// and per slave (connected now or since the master started) str16 address,
// u8 connected, u64 acknowledged log position, u64 lag in bytes, u64 lag in
// milliseconds (how long the oldest record the slave does not have has been
// stored; 0 when it has everything).
struct SlaveStatus {
  std::string addr;
  bool connected = false;
  uint64_t acked = 0;
  uint64_t lag_bytes = 0;
  uint64_t lag_ms = 0;
  bool operator==(const SlaveStatus&) const = default;
};
struct ReplicationStatusResponse {
  uint64_t log_end = 0;
  std::vector<SlaveStatus> slaves;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

}  // namespace mq::protocol

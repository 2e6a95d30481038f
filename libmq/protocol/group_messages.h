// Payloads of the consumer-group requests (heartbeat, offsets, send-back,
// reset, group info). Same conventions as messages.h; see mq-protocol(5).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace mq::protocol {

// A group member silent this long (no heartbeat) is dropped by the broker and
// its queues go to others. Members heartbeat every second.
inline constexpr int64_t kSessionTimeoutMs = 10'000;

struct QueueRef {
  std::string topic;
  uint32_t queue = 0;
  auto operator<=>(const QueueRef&) const = default;
};

// What a member reports per owned queue: the commit blocker.
struct QueueProgress {
  QueueRef q;
  uint64_t committed = 0;
  int64_t lowest_in_flight = -1;  // -1: nothing in flight
  uint64_t in_flight_age_ms = 0;  // how long the lowest in-flight message has been running
  uint32_t reconsume = 0;         // its reconsume count
  uint32_t finished_behind = 0;   // finished messages waiting behind it
};

// heartbeat: str16 group, str16 client_id, str16 host, u32 pid, u8 orderly,
// u16 n topics (str16), u16 n released (QueueRef), u16 n progress.
struct HeartbeatRequest {
  std::string group, client_id, host;
  uint32_t pid = 0;
  bool orderly = false;
  std::vector<std::string> topics;
  std::vector<QueueRef> released;  // queues this member gave up since the last heartbeat
  std::vector<QueueProgress> progress;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// Response: u64 generation, u32 members, u16 n assigned (QueueRef), u16 n reset
// (QueueRef: offsets reset by an admin since this member last fetched them).
struct HeartbeatResponse {
  uint64_t generation = 0;
  uint32_t members = 0;
  std::vector<QueueRef> assigned;
  std::vector<QueueRef> reset;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// query_offsets: str16 group, u16 n QueueRef. Response: per ref i64 offset (-1 = none), u32 epoch.
struct QueryOffsetsRequest {
  std::string group;
  std::vector<QueueRef> queues;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};
struct OffsetEntry {
  QueueRef q;
  int64_t offset = -1;
  uint32_t epoch = 0;
};
struct QueryOffsetsResponse {
  std::vector<OffsetEntry> entries;  // same order as asked
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// commit_offsets: str16 group, str16 client_id, u8 init_only, u16 n {QueueRef, i64 offset, u32 epoch}.
// init_only: set the offset only where the group has none (a new group's --from).
// Response: u16 n {u8 accepted, i64 current offset, u32 current epoch}.
struct CommitRequest {
  std::string group, client_id;
  bool init_only = false;
  std::vector<OffsetEntry> entries;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};
struct CommitResult {
  bool accepted = false;
  int64_t offset = -1;
  uint32_t epoch = 0;
};
struct CommitResponse {
  std::vector<CommitResult> results;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// send_back: str16 group, u32 max_retries, u8 dead_letter_now, str16 reason, then one encoded record
// (as delivered). The broker schedules it on %RETRY%group after the delay of its next level, or
// puts it in %DLQ%group. Response status ok once stored durably.
struct SendBackRequest {
  std::string group;
  uint32_t max_retries = 16;
  bool dead_letter_now = false;
  std::string reason;
  std::string record;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// reset_offsets: str16 group, u8 dry_run, u16 n {QueueRef, i64 expected (-1 = any), i64 new_offset}.
// Compare-and-set per queue. Response: u16 n {u8 applied, i64 old, i64 new}.
struct ResetEntry {
  QueueRef q;
  int64_t expected = -1;
  int64_t new_offset = 0;
};
struct ResetRequest {
  std::string group;
  bool dry_run = false;
  std::vector<ResetEntry> entries;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};
struct ResetResult {
  bool applied = false;
  int64_t old_offset = -1;
  int64_t new_offset = -1;
};
struct ResetResponse {
  std::vector<ResetResult> results;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// group_info: str16 group ("" = every group). Response: u16 n groups, each
// str16 name, u16 n members {str16 client_id, str16 host, u32 pid, u64 last_seen_ms_ago,
// u16 n owned QueueRef}, u16 n offsets {QueueRef, i64 offset}, u16 n progress (QueueProgress).
struct MemberInfo {
  std::string client_id, host;
  uint32_t pid = 0;
  uint64_t idle_ms = 0;
  std::vector<QueueRef> owned;
};
struct GroupInfo {
  std::string group;
  std::vector<MemberInfo> members;
  std::vector<OffsetEntry> offsets;
  std::vector<QueueProgress> progress;
};
struct GroupInfoResponse {
  std::vector<GroupInfo> groups;
  void encode(std::string& out) const;
  bool decode(std::string_view in);
};

// Property names the broker sets on retried and dead-lettered messages.
inline constexpr std::string_view kPropOriginTopic = "%ORIGIN_TOPIC";
inline constexpr std::string_view kPropOriginQueue = "%ORIGIN_QUEUE";
inline constexpr std::string_view kPropOriginOffset = "%ORIGIN_OFFSET";
inline constexpr std::string_view kPropRealTopic = "%REAL_TOPIC";    // where a delayed message goes when due
inline constexpr std::string_view kPropDueMs = "%DUE_MS";
inline constexpr std::string_view kPropDlqReason = "%DLQ_REASON";
inline constexpr std::string_view kPropRedriven = "%REDRIVEN";

// Names starting with '%' are the broker's: it sets them on retried and dead-lettered
// messages and trusts them (where a retry returns, where a re-drive publishes), so a
// producer may not set them, except %REDRIVEN (mq-replay --dlq marks what it re-drove).
inline bool producer_may_set(std::string_view name) {
  return name.empty() || name[0] != '%' || name == kPropRedriven;
}
// The first property of an encoded properties block (see storage/record.h) that a
// producer may not set; empty when there is none (or the block does not decode).
std::string_view reserved_prop(std::string_view props_block);

inline std::string retry_topic(std::string_view group) { return "%RETRY%" + std::string(group); }
inline std::string dlq_topic(std::string_view group) { return "%DLQ%" + std::string(group); }
inline constexpr std::string_view kScheduleTopic = "%SCHEDULE%";

}  // namespace mq::protocol

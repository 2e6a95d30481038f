// Decodes a frame payload the way its receiver does, for every request type
// the broker accepts and every response a client or slave reads. Where a
// payload decodes, checks that encoding it again and decoding that gives the
// same bytes (the codecs agree with each other).
#pragma once

#include <string>
#include <string_view>

#include "fuzz_util.h"
#include "protocol/frame.h"
#include "protocol/group_messages.h"
#include "protocol/messages.h"
#include "protocol/replication_messages.h"
#include "storage/record.h"
#include "util/bytes.h"
#include "util/parse.h"

namespace mq::fuzz {

template <class T>
bool roundtrip(std::string_view payload) {
  T a;
  if (!a.decode(payload)) return false;
  std::string e1;
  a.encode(e1);
  T b;
  MQ_FUZZ_CHECK(b.decode(e1), "re-encoded payload of {} bytes does not decode", e1.size());
  std::string e2;
  b.encode(e2);
  MQ_FUZZ_CHECK(e1 == e2, "encode(decode(encode(x))) differs from encode(x)");
  return true;
}

// The records of a send request / pull response / replicate response, as the
// broker's send handler and the clients walk them.
inline void walk_records(std::string_view rest, bool check_topic) {
  size_t pos = 0;
  while (pos < rest.size()) {
    storage::RecordView v;
    std::string why;
    auto res = storage::decode_record(rest.substr(pos), v, &why);
    if (res != storage::DecodeResult::ok) return;
    MQ_FUZZ_CHECK(!v.bytes.empty() && v.bytes.size() <= rest.size() - pos, "record size {} at {}",
                  v.bytes.size(), pos);
    if (check_topic) (void)validate_topic(v.topic);
    auto m = v.to_message();
    (void)m;
    pos += v.bytes.size();
  }
}

inline void decode_payload(protocol::Type type, bool response, std::string_view p) {
  using namespace protocol;
  if (response) {
    (void)status_from_response(static_cast<protocol::Code>(p.empty() ? 0 : static_cast<uint8_t>(p[0]) % 32), p);
    switch (type) {
      case Type::hello: roundtrip<HelloResponse>(p); break;
      case Type::send: roundtrip<SendResponse>(p); break;
      case Type::pull: {
        PullResponse r;
        if (r.decode(p)) walk_records(r.records, false);
        roundtrip<PullResponse>(p);
        break;
      }
      case Type::topic_info: roundtrip<TopicInfoResponse>(p); break;
      case Type::heartbeat: roundtrip<HeartbeatResponse>(p); break;
      case Type::query_offsets: roundtrip<QueryOffsetsResponse>(p); break;
      case Type::commit_offsets: roundtrip<CommitResponse>(p); break;
      case Type::reset_offsets: roundtrip<ResetResponse>(p); break;
      case Type::group_info: roundtrip<GroupInfoResponse>(p); break;
      case Type::replicate: {
        ReplicateResponse r;
        if (r.decode(p)) walk_records(r.records, true);
        roundtrip<ReplicateResponse>(p);
        break;
      }
      case Type::auth_challenge: roundtrip<AuthChallengeResponse>(p); break;
      case Type::sync_offsets: roundtrip<SyncOffsetsResponse>(p); break;
      case Type::replication_status: roundtrip<ReplicationStatusResponse>(p); break;
      default: break;
    }
    return;
  }
  switch (type) {
    case Type::hello:
    case Type::topic_info: {  // str16 (optional)
      ByteReader in(p);
      std::string s;
      if (in.str16(s) && in.at_end()) (void)validate_topic(s, true);
      break;
    }
    case Type::send: {  // u32 count, records
      ByteReader in(p);
      uint32_t count = 0;
      if (in.u32(count)) walk_records(p.substr(4), true);
      break;
    }
    case Type::pull: {
      PullRequest r;
      if (r.decode(p)) (void)validate_topic(r.topic, true);
      roundtrip<PullRequest>(p);
      break;
    }
    case Type::offset_for_time: roundtrip<OffsetForTimeRequest>(p); break;
    case Type::heartbeat: roundtrip<HeartbeatRequest>(p); break;
    case Type::commit_offsets: roundtrip<CommitRequest>(p); break;
    case Type::query_offsets: roundtrip<QueryOffsetsRequest>(p); break;
    case Type::send_back: {
      SendBackRequest r;
      if (r.decode(p)) {
        (void)validate_group(r.group);
        walk_records(r.record, true);
      }
      roundtrip<SendBackRequest>(p);
      break;
    }
    case Type::reset_offsets: roundtrip<ResetRequest>(p); break;
    case Type::group_info: {
      ByteReader in(p);
      std::string g;
      if (in.str16(g) && in.at_end()) (void)validate_group(g);
      break;
    }
    case Type::replicate: roundtrip<ReplicateRequest>(p); break;
    case Type::sync_offsets: {
      SyncOffsetsRequest r;
      if (r.decode(p))
        for (auto& o : r.offsets) {
          (void)validate_group(o.group);
          (void)validate_topic(o.q.topic, true);
        }
      roundtrip<SyncOffsetsRequest>(p);
      break;
    }
    case Type::auth: roundtrip<AuthRequest>(p); break;
    default: break;
  }
}

}  // namespace mq::fuzz

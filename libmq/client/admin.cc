#include "client/admin.h"

#include "util/bytes.h"

namespace mq::client {

Result<protocol::Frame> Admin::call(protocol::Type type, std::string payload) {
  auto r = ch_->call(type, std::move(payload), timeout_);
  if (!r) return r.status();
  if (r->header.status != protocol::Code::ok)
    return protocol::status_from_response(r->header.status, r->payload).with_context(ch_->address());
  return r;
}

Result<std::vector<protocol::TopicStat>> Admin::topics(const std::string& topic) {
  std::string p;
  ByteWriter(p).str16(topic);
  auto r = call(protocol::Type::topic_info, std::move(p));
  if (!r) {
    if (r.status().code() == Code::not_found) return std::vector<protocol::TopicStat>{};
    return r.status();
  }
  protocol::TopicInfoResponse resp;
  if (!resp.decode(r->payload)) return Status::corruption(ch_->address() + ": malformed topic info");
  return std::move(resp.topics);
}

Result<std::optional<protocol::ReplicationStatusResponse>> Admin::replication() {
  auto r = ch_->call(protocol::Type::replication_status, std::string(), timeout_);
  if (!r) return r.status();
  if (r->header.status == protocol::Code::unknown_type) return std::optional<protocol::ReplicationStatusResponse>{};
  if (r->header.status != protocol::Code::ok)
    return protocol::status_from_response(r->header.status, r->payload).with_context(ch_->address());
  protocol::ReplicationStatusResponse resp;
  if (!resp.decode(r->payload)) return Status::corruption(ch_->address() + ": malformed replication status");
  return std::optional<protocol::ReplicationStatusResponse>(std::move(resp));
}

Result<std::vector<protocol::GroupInfo>> Admin::groups(const std::string& group) {
  std::string p;
  ByteWriter(p).str16(group);
  auto r = call(protocol::Type::group_info, std::move(p));
  if (!r) return r.status();
  protocol::GroupInfoResponse resp;
  if (!resp.decode(r->payload)) return Status::corruption(ch_->address() + ": malformed group info");
  return std::move(resp.groups);
}

Result<uint64_t> Admin::offset_for_time(const std::string& topic, uint32_t queue, int64_t ms) {
  protocol::OffsetForTimeRequest req{topic, queue, ms};
  std::string p;
  req.encode(p);
  auto r = call(protocol::Type::offset_for_time, std::move(p));
  if (!r) return r.status();
  if (r->payload.size() != 8) return Status::corruption(ch_->address() + ": malformed offset answer");
  return load_u64(r->payload.data());
}

Result<std::vector<protocol::ResetResult>> Admin::reset(const protocol::ResetRequest& req) {
  std::string p;
  req.encode(p);
  auto r = call(protocol::Type::reset_offsets, std::move(p));
  if (!r) return r.status();
  protocol::ResetResponse resp;
  if (!resp.decode(r->payload) || resp.results.size() != req.entries.size())
    return Status::corruption(ch_->address() + ": malformed reset answer");
  return std::move(resp.results);
}

std::vector<size_t> missing_brokers(Cluster& cluster, Millis timeout) {
  auto missing = cluster.unaccounted();
  if (missing.empty()) return missing;
  std::vector<std::string> seen;
  for (size_t m : cluster.masters()) {
    auto r = Admin(cluster.node(m).channel, timeout).replication();
    if (r && *r)
      for (auto& s : (*r)->slaves) seen.push_back(s.addr);
  }
  return seen.empty() ? missing : cluster.unaccounted(seen);
}

}  // namespace mq::client

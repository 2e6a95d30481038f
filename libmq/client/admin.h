// Blocking admin requests to one broker (mq-offset, mq-replay): topic info,
// group info, offsets by time, resets. Each call waits for its answer.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "client/cluster.h"
#include "net/channel.h"
#include "protocol/group_messages.h"
#include "protocol/messages.h"
#include "protocol/replication_messages.h"

namespace mq::client {

class Admin {
 public:
  Admin(std::shared_ptr<net::Channel> channel, Millis timeout) : ch_(std::move(channel)), timeout_(timeout) {}

  // "" = every topic. A topic that does not exist is simply absent.
  Result<std::vector<protocol::TopicStat>> topics(const std::string& topic = "");
  // "" = every group.
  Result<std::vector<protocol::GroupInfo>> groups(const std::string& group = "");
  Result<uint64_t> offset_for_time(const std::string& topic, uint32_t queue, int64_t ms);
  Result<std::vector<protocol::ResetResult>> reset(const protocol::ResetRequest& req);
  // A master's slaves and their lag; nullopt from a broker too old to say.
  Result<std::optional<protocol::ReplicationStatusResponse>> replication();
  const std::string& address() const { return ch_->address(); }

 private:
  Result<protocol::Frame> call(protocol::Type type, std::string payload);
  std::shared_ptr<net::Channel> ch_;
  Millis timeout_;
};

// The brokers of the cluster whose data no reachable broker stands for
// (Cluster::unaccounted): when there are any, the reachable masters are asked which
// slaves they have seen (a listed slave that is down while its master answers is not
// missing). Answers that fail are ignored: the broker stays missing.
std::vector<size_t> missing_brokers(Cluster& cluster, Millis timeout);

}  // namespace mq::client

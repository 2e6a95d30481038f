#include "client/topic_info.h"

#include <spdlog/spdlog.h>

#include "util/bytes.h"

namespace mq::client {

Result<protocol::TopicInfoResponse> fetch_topic_info(const BrokerNode& node, std::string_view topic, Millis timeout) {
  std::string payload;
  ByteWriter(payload).str16(topic);
  auto r = node.channel->call(protocol::Type::topic_info, std::move(payload), timeout);
  protocol::TopicInfoResponse info;
  if (r && r->header.status == protocol::Code::topic_not_found) return info;  // absent: nothing to say
  if (r && r->header.status != protocol::Code::ok) r = protocol::status_from_response(r->header.status, r->payload);
  if (!r) return reach_error(r.status()).with_context(fmt::format("topic info from {}", node.address));
  if (!info.decode(r->payload)) return Status::corruption(fmt::format("bad topic info answer from {}", node.address));
  return info;
}

void say_topic_missing(std::string_view topic, bool to_end) {
  if (to_end)
    spdlog::warn("topic '{}' does not exist: nothing to read", topic);
  else
    spdlog::warn("topic '{}' does not exist yet: waiting for its first message", topic);
}

}  // namespace mq::client

// What one broker says about a topic (topic_info), as the producer and the tail
// ask it before they start: a topic the broker does not know is an empty answer.
#pragma once

#include <string_view>

#include "client/cluster.h"
#include "protocol/messages.h"

namespace mq::client {

// Blocking: asks `node` and waits up to `timeout`. A missing topic gives an
// answer without it (no error). Failures name the broker:
// "topic info from HOST:PORT: cannot reach HOST:PORT: ..." or
// "bad topic info answer from HOST:PORT" (corruption).
Result<protocol::TopicInfoResponse> fetch_topic_info(const BrokerNode& node, std::string_view topic, Millis timeout);

// The consumer's one-line notice for a topic no broker has (a mistyped name
// is not just silence): with `to_end` there is nothing to read, else it waits
// for the topic's first message.
void say_topic_missing(std::string_view topic, bool to_end);

}  // namespace mq::client

// How a client program reaches the brokers of its common flags (-b,
// --credentials, --tls-ca and their environment): what mq-send, mq-consume,
// mq-offset and mq-replay share before their own work starts.
#pragma once

#include <memory>
#include <string_view>

#include "cli/common.h"
#include "client/cluster.h"
#include "net/channel.h"
#include "util/status.h"

namespace mq::cli {

// Options for this program's connections: "<program>/<version>" in hello,
// `timeout` to connect, TLS and credentials from the flags and environment
// (cli/credentials.h; invalid_argument when they are unusable).
Result<net::ChannelOptions> channel_options(const CommonOptions& opt, std::string_view program, Millis timeout);

// Checks -b (invalid_argument), then Cluster::connect with channel_options():
// unavailable when no broker answers.
Result<std::unique_ptr<client::Cluster>> connect_cluster(const CommonOptions& opt, std::string_view program,
                                                         Millis timeout);
// The same with channel options read before: a program that connects again
// (mq-send retrying its first contact) reads its credentials and CA once. settle: see
// Cluster::connect.
Result<std::unique_ptr<client::Cluster>> connect_cluster(const CommonOptions& opt,
                                                         const net::ChannelOptions& channel, Millis timeout,
                                                         Millis settle = Millis(0));

}  // namespace mq::cli

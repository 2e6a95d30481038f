#include "cli/connect.h"

#include "cli/credentials.h"

namespace mq::cli {

Result<net::ChannelOptions> channel_options(const CommonOptions& opt, std::string_view program, Millis timeout) {
  auto security = client_security(opt);
  if (!security) return security.status();
  net::ChannelOptions o;
  o.connect_timeout = timeout;
  o.client_name = fmt::format("{}/{}", program, MQ_VERSION);
  o.security = std::move(*security);
  return o;
}

Result<std::unique_ptr<client::Cluster>> connect_cluster(const CommonOptions& opt, std::string_view program,
                                                         Millis timeout) {
  auto brokers = split_brokers(opt.brokers);
  if (!brokers) return brokers.status();
  auto channel = channel_options(opt, program, timeout);
  if (!channel) return channel.status();
  return client::Cluster::connect(*brokers, channel->client_name, timeout, channel->security);
}

Result<std::unique_ptr<client::Cluster>> connect_cluster(const CommonOptions& opt,
                                                         const net::ChannelOptions& channel, Millis timeout,
                                                         Millis settle) {
  auto brokers = split_brokers(opt.brokers);
  if (!brokers) return brokers.status();
  return client::Cluster::connect(*brokers, channel.client_name, timeout, channel.security, settle);
}

}  // namespace mq::cli

// The client's view of the brokers named by -b: one Channel per broker on a
// shared IoThread, what each said in hello (role, master, slaves, limits),
// and latency fault tolerance (a broker that failed is avoided for a while).
//
// Threading: connect() and the accessors run on the caller's thread;
// mark_failed()/available() may be called from any thread (io callbacks).
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "net/channel.h"
#include "util/bytes.h"
#include "protocol/messages.h"
#include "util/status.h"

namespace mq::client {

struct BrokerNode {
  std::string address;                   // as named by -b (or learnt from a peer)
  std::shared_ptr<net::Channel> channel;
  bool reachable = false;                // hello answered
  protocol::HelloResponse hello;         // valid when reachable
  Status error;                          // why not reachable
  std::atomic<int64_t> avoid_until_ms{0};
};

class Cluster {
 public:
  // Says hello to every address (in parallel), then to the masters that
  // slaves name. Fails (unavailable) only when no broker answers at all:
  // "cannot reach 127.0.0.1:9876: Connection refused".
  // Every channel uses `security` (TLS, credentials). settle > 0 (a producer, which needs
  // one master, not all): once a master answered, the others have `settle` more to answer
  // before they are counted unreachable, rather than the whole timeout.
  static Result<std::unique_ptr<Cluster>> connect(const std::vector<std::string>& addresses,
                                                  const std::string& client_name, Millis timeout,
                                                  const net::ClientSecurity& security = {},
                                                  Millis settle = Millis(0));
  // Options for more channels to the same brokers (mq-offset's admin connections).
  const net::ChannelOptions& channel_options() const { return options_; }
  ~Cluster();

  size_t size() const { return nodes_.size(); }
  BrokerNode& node(size_t i) { return *nodes_[i]; }
  const BrokerNode& node(size_t i) const { return *nodes_[i]; }
  // Reachable masters, in -b order.
  std::vector<size_t> masters() const;
  // Where to read each master-slave pair from: the reachable master, else a
  // reachable slave of it (or a slave whose master is unknown).
  std::vector<size_t> read_sources() const;
  // The nodes that did not answer hello and that no broker that did answer stands for:
  // neither the master a reachable slave names nor a slave a reachable master names (in
  // hello, which lists connected slaves, or in `seen_slaves`: those its replication status
  // knows). Such a node may be a master that is down with no slave up and listed: what
  // read_sources() reads lacks its queues. In -b order.
  std::vector<size_t> unaccounted(const std::vector<std::string>& seen_slaves = {}) const;
  // The master whose queues read source i holds: the master a slave names (its address as
  // the slave knows it), else i's own address.
  std::string master_address(size_t i) const;
  // Says (warn) that read source i is a slave read because its master is down, as every
  // reader says it; nothing for a master.
  void say_if_slave_read(size_t i) const;

  // The nodes of broker i's master-slave pair, its master first (i itself
  // when it is one; the master a slave names, else i), then every slave of
  // that master that is listed or that the master named in hello. A slave
  // only named is added as a node without a hello (its channel connects on
  // first use). Caller's thread, before requests are issued that could run
  // callbacks touching the node list.
  std::vector<size_t> pair_of(size_t i);

  // Avoid broker i for `for_ms` (latency fault tolerance).
  void mark_failed(size_t i, int64_t for_ms);
  bool available(size_t i) const;
  void mark_ok(size_t i);

  net::IoThread& io() { return *io_; }

 private:
  Cluster() = default;
  size_t add(const std::string& address, const net::ChannelOptions& opt);
  std::unique_ptr<net::IoThread> io_;  // outlives the channels: ~Cluster resets them first
  std::vector<std::unique_ptr<BrokerNode>> nodes_;
  net::ChannelOptions options_;
};

// "cannot connect to X: why" (the channel's words) -> "cannot reach X: why".
Status reach_error(const Status& s);

// unavailable, naming nodes (not empty) and why each did not answer, then what that
// means, said of "its" or "their" as there are one or more:
//   "127.0.0.1:9877 unreachable (Connection refused): its queues are not shown"
//   "A (Connection refused) and B (timed out after 5s) unreachable: their queues are not shown"
// `consequence` is "queues are not shown" there.
Status unaccounted_error(const Cluster& cluster, const std::vector<size_t>& nodes, std::string_view consequence);

}  // namespace mq::client

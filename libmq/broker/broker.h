// The broker's request handlers: hello, send, pull (with long-poll),
// topic_info, offset_for_time. Other modules (consumer groups, retries,
// replication) add theirs with set_handler(). Plug handle() and
// connection_closed() into a net::Server.
//
// Threading: handle() runs on the connection's strand and never blocks on
// disk sync: sends are answered from the store's append callback. Every
// member is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "broker/auth.h"
#include "broker/long_poll.h"
#include "broker/topics.h"
#include "net/asio.h"
#include "net/server.h"
#include "protocol/frame.h"
#include "protocol/messages.h"
#include "storage/message_store.h"
#include "util/log_limit.h"

namespace mq::broker {

struct BrokerConfig {
  std::string version = MQ_VERSION;
  std::string advertised_address;        // told to clients in hello
  uint32_t default_queues = 4;           // for auto-created topics
  uint32_t max_message_size = 4u << 20;  // body bytes
  bool auto_create = true;
  size_t max_topics = 10000;             // user topics auto-create may reach (topics.h)
  size_t max_parked_per_connection = 1024;
  Millis max_wait{5 * 60 * 1000};        // long-poll waits are clamped to this
  uint32_t max_pull_bytes = 16u << 20;   // pull max_bytes is clamped to this
  uint32_t max_pull_msgs = 32 * 1024;
};

class Broker {
 public:
  // `store` and `topics` must outlive the broker. Registers the store's
  // visible listener (and clears it on destruction).
  Broker(net::asio::io_context& io, storage::MessageStore& store, TopicRegistry& topics,
         BrokerConfig config);
  ~Broker();
  Broker(const Broker&) = delete;
  Broker& operator=(const Broker&) = delete;

  // The server's handler.
  void handle(protocol::Frame request, net::Responder respond);
  // The server's close handler.
  void connection_closed(uint64_t connection_id);

  // Handles `type` (for request types this file does not know). Call before
  // serving; a handler must answer through the responder exactly once.
  using RequestHandler = std::function<void(protocol::Frame&, const net::Responder&)>;
  void set_handler(protocol::Type type, RequestHandler handler);
  // Told of every closed connection (group membership and the like).
  void on_connection_closed(std::function<void(uint64_t)> listener);

  void set_advertised_address(std::string address);
  // Access control (--auth); without it every request is allowed. Set before serving.
  void set_auth(std::shared_ptr<const AuthConfig> config);

  // Replication hooks (broker/replication.h); set them before serving.
  // A slave answers sends with not_master and tells its master in hello.
  void set_role(protocol::Role role, std::string master_addr);
  protocol::Role role() const;
  // Connected slaves' addresses, for hello.
  void set_slaves_provider(std::function<std::vector<std::string>()> provider);
  // Sync replication: a stored batch is acked through the gate, which calls
  // `done` (any thread, exactly once) with the status to send: ok,
  // slave_not_available or flush_slave_timeout. `log_end` covers the batch.
  using AckGate = std::function<void(uint64_t log_end, std::function<void(protocol::Code)> done)>;
  void set_ack_gate(AckGate gate);
  // Told (on the store's thread) whenever records become visible.
  void on_visible(std::function<void()> listener);

  // Stops taking new sends (answered busy), answers every parked pull, and
  // waits up to `wait` for appends already handed to the store to be acked.
  // True when none is left. Call before MessageStore::close().
  bool shutdown(Millis wait);
  size_t appends_in_flight() const { return appends_in_flight_.load(); }
  size_t parked_pulls() const { return parking_.parked(); }

 private:
  void hello(const protocol::Frame& f, const net::Responder& r);
  void send(protocol::Frame& f, const net::Responder& r);
  void pull(const protocol::Frame& f, const net::Responder& r);
  void topic_info(const protocol::Frame& f, const net::Responder& r);
  void offset_for_time(const protocol::Frame& f, const net::Responder& r);
  // The topic's queue count; for sends also creates it when auto-create is on.
  Result<uint32_t> topic_queues(std::string_view topic, bool create);
  // Logs a late fdatasync (flush timeout), rate-limited.
  void warn_late(const Status& st);

  storage::MessageStore& store_;
  TopicRegistry& topics_;
  BrokerConfig config_;
  mutable std::mutex mu_;  // guards advertised address
  PullParking parking_;
  std::map<protocol::Type, RequestHandler> extra_;
  std::vector<std::function<void(uint64_t)>> close_listeners_;
  std::atomic<bool> stopping_{false};
  protocol::Role role_ = protocol::Role::master;
  std::string master_addr_;
  std::function<std::vector<std::string>()> slaves_provider_;
  AckGate ack_gate_;
  std::vector<std::function<void()>> visible_listeners_;
  std::atomic<size_t> appends_in_flight_{0};
  std::atomic<uint64_t> append_failures_{0};          // appends the store refused
  LogLimit append_failure_log_;  // refused appends, said at warn
  LogLimit read_failure_log_;    // damaged reads, said at error
  std::atomic<bool> topic_limit_warned_{false};
  std::atomic<int64_t> late_warned_{0};  // steady_clock ticks of the last warn_late line
  std::unique_ptr<Authorizer> auth_ = std::make_unique<Authorizer>(nullptr);
};

}  // namespace mq::broker

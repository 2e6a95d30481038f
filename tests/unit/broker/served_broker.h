// A broker behind a real server on 127.0.0.1:0, its store and topics in a
// temporary directory: for tests that talk to it over channels.
#pragma once

#include <unistd.h>

#include <catch2/catch.hpp>

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>

#include "broker/broker.h"
#include "broker/topics.h"
#include "net/channel.h"
#include "net/server.h"
#include "storage/message_store.h"

namespace mq::broker::test {

struct ServedBroker {
  // before_listen runs once the broker exists, before it serves (set auth,
  // register more handlers).
  explicit ServedBroker(const std::function<void(ServedBroker&)>& before_listen = {}) {
    namespace fs = std::filesystem;
    std::string tmpl = (fs::temp_directory_path() / "mq-served-XXXXXX").string();
    dir = ::mkdtemp(tmpl.data());
    storage::StoreOptions so;
    so.dir = dir;
    auto s = storage::MessageStore::open(so);
    REQUIRE(s);
    store = std::move(*s);
    auto t = TopicRegistry::open(dir);
    REQUIRE(t);
    topics = std::move(*t);
    broker = std::make_unique<Broker>(io.io(), *store, *topics, BrokerConfig{});
    if (before_listen) before_listen(*this);
    auto srv = net::Server::listen(
        io.io(), "127.0.0.1:0", {},
        [this](protocol::Frame f, net::Responder r) { broker->handle(std::move(f), std::move(r)); },
        [this](uint64_t id) { broker->connection_closed(id); });
    REQUIRE(srv);
    server = std::move(*srv);
  }
  ~ServedBroker() {
    stop();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  // Stops serving, the broker and the store (once).
  void stop() {
    if (stopped_) return;
    stopped_ = true;
    server->stop_accepting();
    broker->shutdown(std::chrono::milliseconds(2000));
    (void)store->close();
    server->close_all();
  }

  std::filesystem::path dir;
  net::IoThread io;
  std::unique_ptr<storage::MessageStore> store;
  std::unique_ptr<TopicRegistry> topics;
  std::unique_ptr<Broker> broker;
  std::unique_ptr<net::Server> server;

 private:
  bool stopped_ = false;
};

}  // namespace mq::broker::test

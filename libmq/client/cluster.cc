#include "client/cluster.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cassert>
#include <condition_variable>
#include <mutex>

#include "util/parse.h"

namespace mq::client {

Status reach_error(const Status& s) {
  constexpr std::string_view kPrefix = "cannot connect to ";
  const std::string& m = s.message();
  if (m.rfind(kPrefix, 0) == 0) return Status(s.code(), "cannot reach " + m.substr(kPrefix.size()));
  return s;
}

Status unaccounted_error(const Cluster& cluster, const std::vector<size_t>& nodes, std::string_view consequence) {
  assert(!nodes.empty());
  // The cause without the address the list names already.
  auto cause = [&](const BrokerNode& n) {
    std::string m = n.error.is_ok() ? "no answer" : n.error.message();
    for (std::string prefix : {"cannot reach " + n.address + ": ", "cannot connect to " + n.address + ": "})
      if (m.rfind(prefix, 0) == 0) return m.substr(prefix.size());
    return m;
  };
  std::string who;
  if (nodes.size() == 1) {
    auto& n = cluster.node(nodes[0]);
    who = fmt::format("{} unreachable ({})", n.address, cause(n));
  } else {
    for (size_t k = 0; k < nodes.size(); ++k) {
      auto& n = cluster.node(nodes[k]);
      who += fmt::format("{}{} ({})", k == 0 ? "" : k + 1 == nodes.size() ? " and " : ", ", n.address, cause(n));
    }
    who += " unreachable";
  }
  return Status::unavailable(fmt::format("{}: {} {}", who, nodes.size() == 1 ? "its" : "their", consequence));
}

Cluster::~Cluster() {
  // Channels close before the io thread stops; the io thread joins in its destructor.
  for (auto& n : nodes_) n->channel.reset();
  nodes_.clear();
  io_.reset();
}

size_t Cluster::add(const std::string& address, const net::ChannelOptions& opt) {
  auto n = std::make_unique<BrokerNode>();
  n->address = address;
  n->channel = net::Channel::create(io_->io(), address, opt);
  nodes_.push_back(std::move(n));
  return nodes_.size() - 1;
}

std::string Cluster::master_address(size_t i) const {
  const BrokerNode& n = *nodes_[i];
  if (n.reachable && n.hello.role == protocol::Role::slave && !n.hello.master_addr.empty()) return n.hello.master_addr;
  return n.address;
}

void Cluster::say_if_slave_read(size_t i) const {
  const BrokerNode& n = *nodes_[i];
  if (n.reachable && n.hello.role == protocol::Role::slave)
    spdlog::warn("master {} is unreachable: read from its slave {}",
                 n.hello.master_addr.empty() ? "?" : n.hello.master_addr, n.address);
}

Result<std::unique_ptr<Cluster>> Cluster::connect(const std::vector<std::string>& addresses,
                                                  const std::string& client_name, Millis timeout,
                                                  const net::ClientSecurity& security, Millis settle) {
  std::unique_ptr<Cluster> c(new Cluster());
  c->io_ = std::make_unique<net::IoThread>();
  net::ChannelOptions& opt = c->options_;
  opt.connect_timeout = timeout;
  opt.client_name = client_name;
  opt.security = security;
  for (auto& a : addresses) {
    bool dup = false;
    for (auto& n : c->nodes_) dup = dup || n->address == a;
    if (!dup) c->add(a, opt);
  }

  // Hello to nodes [from, size) in parallel; returns when all answered, or (settle > 0)
  // `settle` after the first master answered: a hung broker (stopped, no reset) would
  // otherwise hold the start up for the whole timeout. One that answers later is left
  // out (unreachable), its answer ignored.
  auto hello_all = [&](size_t from) {
    struct Wait {
      std::mutex mu;
      std::condition_variable cv;
      size_t left = 0;
      bool master = false;  // a master answered
      bool done = false;    // connect() returned: answers are no longer taken
    };
    auto w = std::make_shared<Wait>();
    w->left = c->nodes_.size() - from;
    for (size_t i = from; i < c->nodes_.size(); ++i) {
      BrokerNode* n = c->nodes_[i].get();
      std::string payload;
      ByteWriter(payload).str16(client_name);
      n->channel->request(protocol::Type::hello, std::move(payload), timeout, [n, w](Result<protocol::Frame> r) {
        std::lock_guard lock(w->mu);
        if (w->done) return;
        if (!r) {
          n->error = reach_error(r.status());
        } else if (r->header.status != protocol::Code::ok) {
          n->error = protocol::status_from_response(r->header.status, r->payload)
                         .with_context(fmt::format("hello to {}", n->address));
        } else if (!n->hello.decode(r->payload)) {
          n->error = Status::corruption(fmt::format("bad hello answer from {}", n->address));
        } else {
          n->reachable = true;
          w->master = w->master || n->hello.role == protocol::Role::master;
        }
        --w->left;
        w->cv.notify_all();
      });
    }
    std::unique_lock lock(w->mu);
    w->cv.wait(lock, [&] { return w->left == 0 || (settle.count() > 0 && w->master); });
    if (w->left > 0) w->cv.wait_for(lock, settle, [&] { return w->left == 0; });
    w->done = true;
    for (size_t i = from; i < c->nodes_.size(); ++i) {
      BrokerNode& n = *c->nodes_[i];
      if (!n.reachable && n.error.is_ok())
        n.error = Status::unavailable(fmt::format("cannot reach {}: no answer to hello within {} of another master's",
                                                  n.address, format_duration(settle)));
    }
  };
  hello_all(0);

  // A slave names its master: learn it when it is not listed yet.
  size_t before = c->nodes_.size();
  for (size_t i = 0; i < before; ++i) {
    auto& n = *c->nodes_[i];
    if (!n.reachable || n.hello.role != protocol::Role::slave || n.hello.master_addr.empty()) continue;
    bool known = false;
    for (auto& m : c->nodes_)
      known = known || m->address == n.hello.master_addr ||
              (m->reachable && m->hello.broker_addr == n.hello.master_addr);
    if (!known) c->add(n.hello.master_addr, opt);
  }
  if (c->nodes_.size() > before) hello_all(before);

  bool any = false;
  for (auto& n : c->nodes_) {
    if (n->reachable) {
      any = true;
      spdlog::debug("broker {}: {} {}, {} default queues", n->address,
                    n->hello.role == protocol::Role::master ? "master" : "slave", n->hello.version,
                    n->hello.default_queues);
    } else {
      spdlog::debug("broker {}: {}", n->address, n->error.message());
    }
  }
  if (!any) return c->nodes_.front()->error.is_ok() ? Status::unavailable("no broker answered")
                                                    : c->nodes_.front()->error;
  return c;
}

std::vector<size_t> Cluster::masters() const {
  std::vector<size_t> out;
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i]->reachable && nodes_[i]->hello.role == protocol::Role::master) out.push_back(i);
  return out;
}

std::vector<size_t> Cluster::read_sources() const {
  std::vector<size_t> out = masters();
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto& n = *nodes_[i];
    if (!n.reachable || n.hello.role != protocol::Role::slave) continue;
    bool master_up = false;
    for (size_t m : masters()) {
      auto& mn = *nodes_[m];
      master_up = master_up || mn.address == n.hello.master_addr || mn.hello.broker_addr == n.hello.master_addr;
    }
    bool pair_taken = false;  // another slave of the same master already reads
    for (size_t o : out) {
      auto& on = *nodes_[o];
      pair_taken = pair_taken || (on.hello.role == protocol::Role::slave && on.hello.master_addr == n.hello.master_addr);
    }
    if (!master_up && !pair_taken) out.push_back(i);
  }
  return out;
}

std::vector<size_t> Cluster::unaccounted(const std::vector<std::string>& seen_slaves) const {
  std::vector<size_t> out;
  for (size_t i = 0; i < nodes_.size(); ++i) {
    auto& n = *nodes_[i];
    if (n.reachable) continue;
    bool covered = std::find(seen_slaves.begin(), seen_slaves.end(), n.address) != seen_slaves.end();
    for (auto& r : nodes_) {
      if (covered) break;
      if (!r->reachable) continue;
      if (r->hello.role == protocol::Role::slave)
        covered = r->hello.master_addr == n.address;  // a master down: read from its slave
      else
        covered = std::find(r->hello.slaves.begin(), r->hello.slaves.end(), n.address) != r->hello.slaves.end();
    }
    if (!covered) out.push_back(i);
  }
  return out;
}

std::vector<size_t> Cluster::pair_of(size_t i) {
  auto is = [this](size_t j, const std::string& addr) {
    auto& n = *nodes_[j];
    return !addr.empty() && (n.address == addr || (n.reachable && n.hello.broker_addr == addr));
  };
  auto find_or_add = [&](const std::string& addr) {
    for (size_t j = 0; j < nodes_.size(); ++j)
      if (is(j, addr)) return j;
    return add(addr, options_);
  };
  size_t master = i;
  if (nodes_[i]->reachable && nodes_[i]->hello.role == protocol::Role::slave && !nodes_[i]->hello.master_addr.empty())
    master = find_or_add(nodes_[i]->hello.master_addr);
  std::vector<size_t> out{master};
  auto push = [&out](size_t j) {
    if (std::find(out.begin(), out.end(), j) == out.end()) out.push_back(j);
  };
  if (master != i) push(i);
  if (nodes_[master]->reachable)
    for (auto& a : nodes_[master]->hello.slaves) push(find_or_add(a));
  for (size_t j = 0; j < nodes_.size(); ++j) {
    auto& n = *nodes_[j];
    if (j != master && n.reachable && n.hello.role == protocol::Role::slave &&
        (is(master, n.hello.master_addr) || n.hello.master_addr == nodes_[master]->address))
      push(j);
  }
  return out;
}

void Cluster::mark_failed(size_t i, int64_t for_ms) {
  nodes_[i]->avoid_until_ms.store(now_ms() + for_ms, std::memory_order_relaxed);
}

void Cluster::mark_ok(size_t i) { nodes_[i]->avoid_until_ms.store(0, std::memory_order_relaxed); }

bool Cluster::available(size_t i) const {
  int64_t until = nodes_[i]->avoid_until_ms.load(std::memory_order_relaxed);
  return until == 0 || now_ms() >= until;
}

}  // namespace mq::client

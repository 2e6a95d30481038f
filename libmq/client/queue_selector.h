// Which (master, queue) a message goes to: --queue N pins a queue; messages
// with the same key go to the same queue (hash of the key over all queues of
// all masters); keyless ones round-robin. Brokers in fault avoidance are
// skipped while another one is available; a retry excludes the broker that
// just failed when there is another.
//
// A master that is gone may be replaced by its promoted slave (substitute): its queues,
// and so the queue of every key, stay where they were, on the new broker.
//
// Threading: select() and substitute() may be called from any thread (the counter and
// each master's broker index are atomic).
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <functional>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace mq::client {

// Stable across runs and hosts (FNV-1a 32), so a key keeps its queue.
uint32_t key_hash(std::string_view key);

struct Route {
  size_t broker = 0;  // cluster node index
  uint32_t queue = 0;
};

class QueueSelector {
 public:
  // brokers[i] has queue_counts[i] queues (each >= 1).
  QueueSelector(std::vector<size_t> brokers, std::vector<uint32_t> queue_counts,
                std::optional<uint32_t> pinned = std::nullopt);
  QueueSelector(QueueSelector&& o) noexcept
      : n_(o.n_), brokers_(std::move(o.brokers_)), counts_(std::move(o.counts_)), routes_(std::move(o.routes_)),
        pinned_(o.pinned_), rr_(o.rr_.load()) {}

  // available(broker): false while the broker is avoided. exclude: the broker
  // of the attempt that just failed (avoided when any other broker exists).
  Route select(std::optional<std::string_view> key, const std::function<bool(size_t)>& available,
               std::optional<size_t> exclude = std::nullopt);

  size_t total_queues() const { return routes_.size(); }
  uint32_t queue_count(size_t broker) const;
  // Messages for broker `from` go to `to` from now on (its promoted slave: same queues).
  // False when `from` is not one of the brokers.
  bool substitute(size_t from, size_t to);
  bool has(size_t broker) const;

 private:
  struct Slot {
    size_t master;  // index into brokers_
    uint32_t queue;
  };
  size_t broker(size_t i) const { return brokers_[i].load(std::memory_order_acquire); }
  size_t n_ = 0;
  std::unique_ptr<std::atomic<size_t>[]> brokers_;
  std::vector<uint32_t> counts_;
  std::vector<Slot> routes_;
  std::optional<uint32_t> pinned_;
  std::atomic<uint64_t> rr_{0};
};

}  // namespace mq::client

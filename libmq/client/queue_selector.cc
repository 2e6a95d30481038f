#include "client/queue_selector.h"

#include <cassert>
#include <random>

namespace mq::client {

uint32_t key_hash(std::string_view key) {
  uint32_t h = 2166136261u;
  for (char c : key) {
    h ^= static_cast<uint8_t>(c);
    h *= 16777619u;
  }
  return h;
}

QueueSelector::QueueSelector(std::vector<size_t> brokers, std::vector<uint32_t> queue_counts,
                             std::optional<uint32_t> pinned)
    : brokers_(std::move(brokers)), counts_(std::move(queue_counts)), pinned_(pinned) {
  assert(brokers_.size() == counts_.size() && !brokers_.empty());
  for (size_t i = 0; i < brokers_.size(); ++i)
    for (uint32_t q = 0; q < counts_[i]; ++q) routes_.push_back({brokers_[i], q});
  // Start the round robin at a random place so that many short-lived
  // producers do not all fill queue 0 first.
  rr_.store(std::random_device{}() % (routes_.empty() ? 1 : routes_.size()));
}

uint32_t QueueSelector::queue_count(size_t broker) const {
  for (size_t i = 0; i < brokers_.size(); ++i)
    if (brokers_[i] == broker) return counts_[i];
  return 0;
}

Route QueueSelector::select(std::optional<std::string_view> key, const std::function<bool(size_t)>& available,
                            std::optional<size_t> exclude) {
  // Usable: not excluded (when another broker exists) and available (when any is).
  auto usable = [&](size_t broker, bool need_available) {
    if (exclude && broker == *exclude && brokers_.size() > 1) return false;
    return !need_available || available(broker);
  };
  bool any_available = false;
  for (size_t b : brokers_) any_available = any_available || usable(b, true);

  if (pinned_) {
    for (size_t b : brokers_)
      if (usable(b, any_available)) return {b, *pinned_};
    return {brokers_.front(), *pinned_};
  }
  if (key) {
    uint32_t h = key_hash(*key);
    const Route& r = routes_[h % routes_.size()];
    if (usable(r.broker, any_available)) return r;
    // Its broker is out: the same key goes to one fixed queue of the next usable broker.
    for (size_t i = 0; i < brokers_.size(); ++i) {
      if (usable(brokers_[i], any_available)) return {brokers_[i], h % counts_[i]};
    }
    return r;
  }
  for (size_t tries = 0; tries < routes_.size(); ++tries) {
    const Route& r = routes_[rr_.fetch_add(1, std::memory_order_relaxed) % routes_.size()];
    if (usable(r.broker, any_available)) return r;
  }
  return routes_[rr_.fetch_add(1, std::memory_order_relaxed) % routes_.size()];
}

}  // namespace mq::client

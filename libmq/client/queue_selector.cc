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
    : n_(brokers.size()), brokers_(new std::atomic<size_t>[brokers.size()]), counts_(std::move(queue_counts)),
      pinned_(pinned) {
  assert(n_ == counts_.size() && n_ > 0);
  for (size_t i = 0; i < n_; ++i) brokers_[i].store(brokers[i]);
  for (size_t i = 0; i < n_; ++i)
    for (uint32_t q = 0; q < counts_[i]; ++q) routes_.push_back({i, q});
  // Start the round robin at a random place so that many short-lived
  // producers do not all fill queue 0 first.
  rr_.store(std::random_device{}() % (routes_.empty() ? 1 : routes_.size()));
}

uint32_t QueueSelector::queue_count(size_t b) const {
  for (size_t i = 0; i < n_; ++i)
    if (broker(i) == b) return counts_[i];
  return 0;
}

bool QueueSelector::has(size_t b) const {
  for (size_t i = 0; i < n_; ++i)
    if (broker(i) == b) return true;
  return false;
}

bool QueueSelector::substitute(size_t from, size_t to) {
  for (size_t i = 0; i < n_; ++i) {
    size_t expect = from;
    if (brokers_[i].compare_exchange_strong(expect, to, std::memory_order_acq_rel)) return true;
  }
  return false;
}

Route QueueSelector::select(std::optional<std::string_view> key, const std::function<bool(size_t)>& available,
                            std::optional<size_t> exclude) {
  // Usable: not excluded (when another broker exists) and available (when any is).
  auto usable = [&](size_t b, bool need_available) {
    if (exclude && b == *exclude && n_ > 1) return false;
    return !need_available || available(b);
  };
  bool any_available = false;
  for (size_t i = 0; i < n_; ++i) any_available = any_available || usable(broker(i), true);

  if (pinned_) {
    for (size_t i = 0; i < n_; ++i)
      if (usable(broker(i), any_available)) return {broker(i), *pinned_};
    return {broker(0), *pinned_};
  }
  auto route = [&](const Slot& s) { return Route{broker(s.master), s.queue}; };
  if (key) {
    uint32_t h = key_hash(*key);
    Route r = route(routes_[h % routes_.size()]);
    if (usable(r.broker, any_available)) return r;
    // Its broker is out: the same key goes to one fixed queue of the next usable broker.
    for (size_t i = 0; i < n_; ++i) {
      if (usable(broker(i), any_available)) return {broker(i), h % counts_[i]};
    }
    return r;
  }
  for (size_t tries = 0; tries < routes_.size(); ++tries) {
    Route r = route(routes_[rr_.fetch_add(1, std::memory_order_relaxed) % routes_.size()]);
    if (usable(r.broker, any_available)) return r;
  }
  return route(routes_[rr_.fetch_add(1, std::memory_order_relaxed) % routes_.size()]);
}

}  // namespace mq::client

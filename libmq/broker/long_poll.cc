#include "broker/long_poll.h"

#include <spdlog/spdlog.h>

#include <future>
#include <map>
#include <vector>

namespace mq::broker {

namespace asio = boost::asio;
using error_code = boost::system::error_code;

struct PullParking::State : std::enable_shared_from_this<PullParking::State> {
  struct Entry {
    uint64_t connection;
    Attempt attempt;
    std::unique_ptr<asio::steady_timer> timer;
  };

  State(asio::io_context& io, size_t max) : strand(asio::make_strand(io)), max_per_connection(max) {}

  // --- on strand ---
  void insert(uint64_t id, uint64_t connection, Millis wait, Attempt attempt) {
    if (stopping_on_strand) {
      attempt(true);
      release(connection);
      return;
    }
    // A pull that found nothing may have raced with a send: try once now.
    if (attempt(false)) {
      release(connection);
      return;
    }
    auto timer = std::make_unique<asio::steady_timer>(strand, wait);
    timer->async_wait([self = shared_from_this(), id](const error_code& ec) {
      if (!ec) self->finish(id);
    });
    entries.emplace(id, Entry{connection, std::move(attempt), std::move(timer)});
  }

  void finish(uint64_t id) {
    auto it = entries.find(id);
    if (it == entries.end()) return;
    Entry e = std::move(it->second);
    entries.erase(it);
    e.timer->cancel();
    e.attempt(true);
    release(e.connection);
  }

  void retry_all() {
    notify_pending.store(false, std::memory_order_relaxed);
    for (auto it = entries.begin(); it != entries.end();) {
      if (it->second.attempt(false)) {
        it->second.timer->cancel();
        release(it->second.connection);
        it = entries.erase(it);
      } else {
        ++it;
      }
    }
  }

  void drop_connection(uint64_t connection) {
    for (auto it = entries.begin(); it != entries.end();) {
      if (it->second.connection == connection) {
        it->second.timer->cancel();
        release(connection);
        it = entries.erase(it);
      } else {
        ++it;
      }
    }
  }

  void answer_all() {
    stopping_on_strand = true;
    auto all = std::move(entries);
    entries.clear();
    for (auto& [id, e] : all) {
      e.timer->cancel();
      e.attempt(true);
      release(e.connection);
    }
  }

  // --- any thread ---
  bool reserve(uint64_t connection) {
    std::lock_guard lock(mu);
    if (stopping) return false;
    auto& n = per_connection[connection];
    if (n >= max_per_connection) return false;
    ++n;
    parked.fetch_add(1, std::memory_order_relaxed);
    return true;
  }

  void release(uint64_t connection) {
    std::lock_guard lock(mu);
    auto it = per_connection.find(connection);
    if (it != per_connection.end() && it->second > 0 && --it->second == 0) per_connection.erase(it);
    parked.fetch_sub(1, std::memory_order_relaxed);
  }

  asio::strand<asio::io_context::executor_type> strand;
  size_t max_per_connection;
  std::map<uint64_t, Entry> entries;  // on strand, by park order
  uint64_t next_id = 1;               // under mu
  bool stopping_on_strand = false;
  std::atomic<bool> notify_pending{false};
  std::atomic<size_t> parked{0};
  std::mutex mu;
  bool stopping = false;  // under mu
  std::unordered_map<uint64_t, size_t> per_connection;  // under mu
};

PullParking::PullParking(asio::io_context& io, size_t max_per_connection)
    : state_(std::make_shared<State>(io, max_per_connection)) {}

PullParking::~PullParking() {
  asio::post(state_->strand, [s = state_] {
    for (auto& [id, e] : s->entries) e.timer->cancel();
    s->entries.clear();
  });
}

bool PullParking::park(uint64_t connection, Millis wait, Attempt attempt) {
  if (!state_->reserve(connection)) return false;
  uint64_t id;
  {
    std::lock_guard lock(state_->mu);
    id = state_->next_id++;
  }
  asio::post(state_->strand, [s = state_, id, connection, wait, attempt = std::move(attempt)]() mutable {
    s->insert(id, connection, wait, std::move(attempt));
  });
  return true;
}

void PullParking::notify() {
  if (state_->parked.load(std::memory_order_relaxed) == 0) return;
  if (state_->notify_pending.exchange(true, std::memory_order_relaxed)) return;
  asio::post(state_->strand, [s = state_] { s->retry_all(); });
}

void PullParking::connection_closed(uint64_t connection) {
  asio::post(state_->strand, [s = state_, connection] { s->drop_connection(connection); });
}

void PullParking::shutdown() {
  {
    std::lock_guard lock(state_->mu);
    state_->stopping = true;
  }
  auto done = std::make_shared<std::promise<void>>();
  auto f = done->get_future();
  asio::post(state_->strand, [s = state_, done] {
    s->answer_all();
    done->set_value();
  });
  if (f.wait_for(std::chrono::seconds(5)) != std::future_status::ready)
    spdlog::warn("parked pulls were not answered within 5s of shutdown");
}

size_t PullParking::parked() const { return state_->parked.load(std::memory_order_relaxed); }

}  // namespace mq::broker

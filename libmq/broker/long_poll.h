// Parked pull requests (long-poll). A pull that finds nothing and asked to
// wait is parked here; it is retried every time the store reports newly
// visible records, and answered at the latest when its wait ends, on
// shutdown, or dropped when its connection closes.
//
// Threading: park()/notify()/connection_closed()/shutdown() may be called
// from any thread. Attempts run on this object's strand, one at a time.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "net/asio.h"
#include "util/parse.h"

namespace mq::broker {

class PullParking {
 public:
  // Tries to answer the parked pull. `final`: the wait is over (or the broker
  // stops): answer in any case. Returns true when it answered.
  using Attempt = std::function<bool(bool final)>;

  PullParking(net::asio::io_context& io, size_t max_per_connection);
  ~PullParking();

  // False (nothing parked; answer now) when the connection already has its
  // maximum parked or the broker is stopping. Otherwise `attempt` is retried
  // once right away (records may have become visible in between) and then on
  // every notify() until it answers or `wait` ends.
  bool park(uint64_t connection, Millis wait, Attempt attempt);
  // New records are visible somewhere. Cheap; coalesces bursts.
  void notify();
  void connection_closed(uint64_t connection);
  // Answers every parked pull (final attempts) and parks no more. Returns
  // once they were answered.
  void shutdown();
  size_t parked() const;

 private:
  // Shared with the io handlers, so it outlives this object while they run.
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace mq::broker

// The broker side of consumer groups: membership and assignment
// (GroupCoordinator), committed offsets (OffsetTable, DIR/offsets.json),
// send-back with delayed retry and dead letters (DelayScheduler), admin
// resets and group info. Registers its request handlers on a Broker and runs
// its timers on the broker's io_context: member expiry every second, offsets
// persisted every 200 ms when changed (commits sooner, see persist_gap_), due
// retries moved every 100 ms.
#pragma once

#include <filesystem>
#include <memory>
#include <mutex>
#include <vector>

#include "broker/broker.h"
#include "broker/delay_scheduler.h"
#include "broker/group_coordinator.h"
#include "broker/offset_table.h"
#include "broker/topics.h"
#include "net/asio.h"
#include "storage/message_store.h"

namespace mq::broker {

class GroupService {
 public:
  static Result<std::unique_ptr<GroupService>> create(net::asio::io_context& io, Broker& broker,
                                                      storage::MessageStore& store, TopicRegistry& topics,
                                                      const std::filesystem::path& data_dir,
                                                      std::vector<Millis> delay_levels,
                                                      Millis persist_every = Millis(200));
  ~GroupService();
  // Stops the timers and persists the offsets.
  Status close();

  OffsetTable& offsets() { return *offsets_; }

 private:
  GroupService(net::asio::io_context& io, Broker& broker, storage::MessageStore& store, TopicRegistry& topics);
  void start_timers();
  void every(net::asio::steady_timer& timer, Millis period, std::function<void()> fn);
  void heartbeat(protocol::Frame& f, const net::Responder& r);
  void query_offsets(protocol::Frame& f, const net::Responder& r);
  void commit_offsets(protocol::Frame& f, const net::Responder& r);
  void send_back(protocol::Frame& f, const net::Responder& r);
  void group_info(protocol::Frame& f, const net::Responder& r);
  void reset_offsets(protocol::Frame& f, const net::Responder& r);

  net::asio::io_context& io_;
  Broker& broker_;
  storage::MessageStore& store_;
  TopicRegistry& topics_;
  std::unique_ptr<OffsetTable> offsets_;
  std::unique_ptr<GroupCoordinator> coordinator_;
  std::unique_ptr<DelayScheduler> delays_;
  net::asio::steady_timer expire_timer_, persist_timer_, delay_timer_;
  // Why offsets.json could not be written last time ("" = it could): commits are
  // refused meanwhile, so consumers know their progress is not kept.
  // A commit is answered once offsets.json holds it: an acknowledged commit
  // survives a broker restart. It is saved persist_gap_ after the start of the
  // last save that answered commits (5 ms after it came when that was longer
  // ago, so that a member's commits for its queues share one save): ten
  // times what that save took, at most persist_every_. So a lone commit (a new
  // group's --from, the last one of an mq-consume -e) is answered in
  // milliseconds, and saves of a large table take at most a tenth of the time.
  std::mutex persist_error_mu_;
  std::string persist_error_;          // guarded by persist_error_mu_
  std::vector<std::pair<net::Responder, std::string>> awaiting_persist_;  // guarded by persist_error_mu_
  int64_t persist_error_logged_ms_ = 0;  // persist timer only
  Millis persist_every_{200};
  // Guarded by persist_error_mu_:
  std::chrono::steady_clock::time_point last_persist_{};
  std::chrono::steady_clock::duration persist_gap_{};
  bool persist_posted_ = false;  // soon_timer_ set for the commits waiting
  net::asio::steady_timer soon_timer_;
  void persist_and_answer();
  std::shared_ptr<std::atomic<bool>> alive_ = std::make_shared<std::atomic<bool>>(true);
};

}  // namespace mq::broker

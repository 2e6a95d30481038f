#include "broker/group_service.h"

#include <spdlog/spdlog.h>

#include <set>

#include "util/bytes.h"
#include "util/log_limit.h"
#include "util/parse.h"

namespace mq::broker {

namespace {
// How long a commit that finds no save due waits for others to share its save.
constexpr auto kCommitGather = std::chrono::milliseconds(5);
}  // namespace

using protocol::Code;

GroupService::GroupService(net::asio::io_context& io, Broker& broker, storage::MessageStore& store,
                           TopicRegistry& topics)
    : io_(io), broker_(broker), store_(store), topics_(topics), expire_timer_(io), persist_timer_(io),
      delay_timer_(io), soon_timer_(io) {}

GroupService::~GroupService() { *alive_ = false; }

Result<std::unique_ptr<GroupService>> GroupService::create(net::asio::io_context& io, Broker& broker,
                                                           storage::MessageStore& store, TopicRegistry& topics,
                                                           const std::filesystem::path& data_dir,
                                                           std::vector<Millis> delay_levels,
                                                           Millis persist_every) {
  std::unique_ptr<GroupService> g(new GroupService(io, broker, store, topics));
  g->persist_every_ = persist_every;
  auto offsets = OffsetTable::open(data_dir / "offsets.json");
  if (!offsets) return offsets.status();
  g->offsets_ = std::move(*offsets);
  if (g->offsets_->was_missing() && store.log_end() > 0)
    spdlog::warn("{} is missing although the log holds messages: no consumer group has offsets here (if the file "
                 "was removed, every group starts again from its --from; restore it with mq-offset import)",
                 (data_dir / "offsets.json").string());
  // Written at once, even empty: from then on a missing file was removed. Should the disk
  // be full, the first commit writes it (and is refused until then).
  if (g->offsets_->was_missing())
    if (auto st = g->offsets_->persist(/*always=*/true); !st) spdlog::warn("{}", st.to_string());
  // Offsets can never be ahead of the log (recovery may have cut its tail).
  for (auto& [topic, queue] : store.queues()) {
    auto info = store.queue_info(topic, queue);
    g->offsets_->clamp({topic, queue}, static_cast<int64_t>(info.max_offset));
  }
  TopicRegistry* reg = &topics;
  g->coordinator_ = std::make_unique<GroupCoordinator>(
      [reg](const std::string& t) { return reg->queues(t).value_or(0); });
  g->delays_ = std::make_unique<DelayScheduler>(store, *g->offsets_, std::move(delay_levels),
                                                [reg, limit = std::make_shared<LogLimit>()](
                                                    const std::string& t, uint32_t n) -> Status {
                                                  auto r = reg->ensure(t, n);
                                                  // Retried every tick while it fails: said once a minute.
                                                  if (!r)
                                                    spdlog::log(limit->due() ? spdlog::level::warn : spdlog::level::debug,
                                                                "topic {}: {}", t, r.status().to_string());
                                                  return r.status();
                                                });
  GroupService* self = g.get();
  auto bind = [self](void (GroupService::*fn)(protocol::Frame&, const net::Responder&)) {
    return [self, fn](protocol::Frame& f, const net::Responder& r) { (self->*fn)(f, r); };
  };
  broker.set_handler(protocol::Type::heartbeat, bind(&GroupService::heartbeat));
  broker.set_handler(protocol::Type::query_offsets, bind(&GroupService::query_offsets));
  broker.set_handler(protocol::Type::commit_offsets, bind(&GroupService::commit_offsets));
  broker.set_handler(protocol::Type::send_back, bind(&GroupService::send_back));
  broker.set_handler(protocol::Type::group_info, bind(&GroupService::group_info));
  broker.set_handler(protocol::Type::reset_offsets, bind(&GroupService::reset_offsets));
  auto alive = g->alive_;
  broker.on_connection_closed([self, alive](uint64_t id) {
    if (*alive) self->coordinator_->connection_closed(id);
  });
  g->start_timers();
  return g;
}

void GroupService::every(net::asio::steady_timer& timer, Millis period, std::function<void()> fn) {
  timer.expires_after(period);
  timer.async_wait([this, &timer, period, fn = std::move(fn), alive = alive_](boost::system::error_code ec) mutable {
    if (ec || !*alive) return;
    fn();
    every(timer, period, std::move(fn));
  });
}

void GroupService::start_timers() {
  every(expire_timer_, Millis(1000), [this] { coordinator_->expire(now_ms()); });
  every(persist_timer_, persist_every_, [this] { persist_and_answer(); });
  // A slave's %SCHEDULE% records belong to its master, which redelivers them.
  every(delay_timer_, Millis(100), [this] {
    if (broker_.role() == protocol::Role::master) delays_->tick(now_ms());
  });
}

void GroupService::persist_and_answer() {
  // Taken before persisting: every commit in the list is in the table already, so in the file.
  std::vector<std::pair<net::Responder, std::string>> waiting;
  {
    std::lock_guard lk(persist_error_mu_);
    waiting.swap(awaiting_persist_);
    persist_posted_ = false;
  }
  auto started = std::chrono::steady_clock::now();
  auto st = offsets_->persist();
  int64_t now = now_ms();
  {
    std::lock_guard lk(persist_error_mu_);
    // Only a save that answers commits sets the gap (the tick runs every period,
    // mostly with nothing to save).
    if (!waiting.empty()) {
      last_persist_ = started;
      persist_gap_ = std::min<std::chrono::steady_clock::duration>(
          10 * (std::chrono::steady_clock::now() - started), persist_every_);
    }
    if (!st) {
      // Every 200 ms while the disk is full: said once, then every minute.
      if (persist_error_.empty() || now - persist_error_logged_ms_ >= 60000) {
        spdlog::error("{} (offset commits are refused until it works)", st.to_string());
        persist_error_logged_ms_ = now;
      }
      persist_error_ = st.message();
    } else if (!persist_error_.empty()) {
      spdlog::info("consumer offsets saved again");
      persist_error_.clear();
    }
  }
  for (auto& [r, payload] : waiting) {
    if (st)
      r.reply(Code::ok, std::move(payload));
    else
      r.fail(Code::io_error, fmt::format("offsets are not being saved: {}", st.message()));
  }
}

Status GroupService::close() {
  *alive_ = false;
  boost::system::error_code ec;
  expire_timer_.cancel();
  persist_timer_.cancel();
  delay_timer_.cancel();
  {
    std::lock_guard lk(persist_error_mu_);
    soon_timer_.cancel();
  }
  persist_and_answer();  // answers the commits still waiting
  return offsets_->persist();
}

namespace {

template <class Resp>
std::string encoded(const Resp& r) {
  std::string out;
  r.encode(out);
  return out;
}

}  // namespace

void GroupService::heartbeat(protocol::Frame& f, const net::Responder& r) {
  protocol::HeartbeatRequest req;
  if (!req.decode(f.payload)) return r.refuse(Code::bad_request, "malformed heartbeat");
  if (auto st = validate_group(req.group); !st) return r.fail(Code::bad_request, st.message());
  if (req.client_id.empty()) return r.fail(Code::bad_request, "heartbeat without a client id");
  auto resp = coordinator_->heartbeat(req, r.connection_id(), now_ms());
  r.reply(Code::ok, encoded(resp));
}

void GroupService::query_offsets(protocol::Frame& f, const net::Responder& r) {
  protocol::QueryOffsetsRequest req;
  if (!req.decode(f.payload)) return r.refuse(Code::bad_request, "malformed query_offsets");
  protocol::QueryOffsetsResponse resp;
  for (auto& q : req.queues) {
    auto e = offsets_->get(req.group, q);
    resp.entries.push_back({q, e.offset, e.epoch});
  }
  r.reply(Code::ok, encoded(resp));
}

void GroupService::commit_offsets(protocol::Frame& f, const net::Responder& r) {
  protocol::CommitRequest req;
  if (!req.decode(f.payload)) return r.refuse(Code::bad_request, "malformed commit_offsets");
  if (auto st = validate_group(req.group); !st) return r.fail(Code::bad_request, st.message());
  {
    std::lock_guard lk(persist_error_mu_);
    if (!persist_error_.empty())
      return r.fail(Code::io_error, fmt::format("offsets are not being saved: {}", persist_error_));
  }
  protocol::CommitResponse resp;
  for (auto& e : req.entries) {
    // Never ahead of the log: clamp to the queue's end.
    auto info = store_.queue_info(e.q.topic, e.q.queue);
    int64_t off = std::min<int64_t>(e.offset, static_cast<int64_t>(info.max_offset));
    if (!req.init_only && !coordinator_->owns(req.group, req.client_id, e.q)) {
      // A member that lost the queue (rebalance) must not move its offset.
      auto cur = offsets_->get(req.group, e.q);
      resp.results.push_back({false, cur.offset, cur.epoch});
      continue;
    }
    resp.results.push_back(offsets_->commit(req.group, e.q, off, e.epoch, req.init_only));
  }
  std::lock_guard lk(persist_error_mu_);
  awaiting_persist_.emplace_back(r, encoded(resp));  // answered by the next persist
  if (persist_posted_ || !*alive_) return;
  persist_posted_ = true;
  // A member's commits for its queues come one per queue, back to back (a new
  // group's --from): a short wait lets them share the save, and the queues start together.
  soon_timer_.expires_at(std::max(last_persist_ + persist_gap_, std::chrono::steady_clock::now() + kCommitGather));
  soon_timer_.async_wait([this, alive = alive_](boost::system::error_code ec) {
    if (!ec && *alive) persist_and_answer();
  });
}

void GroupService::send_back(protocol::Frame& f, const net::Responder& r) {
  protocol::SendBackRequest req;
  if (!req.decode(f.payload)) return r.refuse(Code::bad_request, "malformed send_back");
  if (auto st = validate_group(req.group); !st) return r.fail(Code::bad_request, st.message());
  delays_->send_back(req, now_ms(), [r](Status st) {
    if (st) return r.reply(Code::ok, std::string());
    r.fail(protocol::code_from_status(st), st.message());
  });
}

void GroupService::group_info(protocol::Frame& f, const net::Responder& r) {
  ByteReader rd(f.payload);
  std::string group;
  if (!rd.str16(group) || !rd.at_end()) return r.refuse(Code::bad_request, "malformed group_info");
  // Commits waiting for the next persist are saved (and answered) first, so that what is
  // shown is what the file holds and is also current (a reset's compare-and-set takes
  // these offsets as expected values). If saving fails, the saved ones are shown.
  persist_and_answer();
  std::set<std::string> names;
  if (!group.empty()) {
    names.insert(group);
  } else {
    for (auto& g : coordinator_->groups()) names.insert(g);
    for (auto& g : offsets_->groups())
      if (g != kScheduleGroup) names.insert(g);
  }
  protocol::GroupInfoResponse resp;
  int64_t now = now_ms();
  for (auto& g : names) {
    auto info = coordinator_->info(g, now);
    // What is on disk: a commit shows once it is persisted (and answered), so what
    // mq-offset shows never goes back after a kill -9 of the broker.
    info.offsets = offsets_->saved_entries(g);
    resp.groups.push_back(std::move(info));
  }
  r.reply(Code::ok, encoded(resp));
}

void GroupService::reset_offsets(protocol::Frame& f, const net::Responder& r) {
  protocol::ResetRequest req;
  if (!req.decode(f.payload)) return r.refuse(Code::bad_request, "malformed reset_offsets");
  if (auto st = validate_group(req.group); !st) return r.fail(Code::bad_request, st.message());
  if (!req.dry_run) {
    // As for commits: a reset the broker cannot save is refused, not applied in memory
    // and answered as done (a kill -9 would then undo it in silence).
    std::lock_guard lk(persist_error_mu_);
    if (!persist_error_.empty())
      return r.fail(Code::io_error, fmt::format("offsets are not being saved: {}", persist_error_));
  }
  protocol::ResetResponse resp;
  for (auto& e : req.entries) {
    auto info = store_.queue_info(e.q.topic, e.q.queue);
    int64_t target = std::clamp<int64_t>(e.new_offset, static_cast<int64_t>(info.min_offset),
                                         static_cast<int64_t>(info.max_offset));
    auto res = offsets_->reset(req.group, e.q, e.expected, target, req.dry_run);
    if (res.applied && !req.dry_run) coordinator_->note_reset(req.group, e.q);
    resp.results.push_back(res);
  }
  if (req.dry_run) return r.reply(Code::ok, encoded(resp));
  // Answered once saved, or with IO_ERROR if saving fails now.
  {
    std::lock_guard lk(persist_error_mu_);
    awaiting_persist_.emplace_back(r, encoded(resp));
  }
  persist_and_answer();
}

}  // namespace mq::broker

#include "broker/replication.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <set>

#include "protocol/messages.h"
#include "protocol/replication_messages.h"
#include "storage/record.h"
#include "util/bytes.h"
#include "util/thread_name.h"

namespace mq::broker {

namespace asio = boost::asio;
using protocol::Code;
using protocol::Type;

namespace {

constexpr auto kTick = std::chrono::milliseconds(50);

Code store_code(const Status& s) {
  return s.code() == mq::Code::disk_full ? Code::disk_full : protocol::code_from_status(s);
}

}  // namespace

// ---- master ------------------------------------------------------------------

ReplicationMaster::ReplicationMaster(asio::io_context& io, Broker& broker, storage::MessageStore& store,
                                     TopicRegistry& topics, ReplicationOptions options)
    : io_(io), store_(store), topics_(topics), opt_(options), parking_(io, 4), timer_(io),
      grace_until_(std::chrono::steady_clock::now() + std::min(kSlaveGrace, opt_.timeout)) {
  broker.set_handler(Type::replicate,
                     [this](protocol::Frame& f, const net::Responder& r) { replicate(f, r); });
  broker.on_connection_closed([this](uint64_t id) { connection_closed(id); });
  broker.on_visible([this] { parking_.notify(); });
  broker.set_slaves_provider([this] { return slaves(); });
  broker.set_handler(Type::replication_status, [this](protocol::Frame& f, const net::Responder& r) {
    if (!f.payload.empty())
      return r.refuse(Code::bad_request, "replication_status request: payload must be empty");
    std::string out;
    status().encode(out);
    r.reply(Code::ok, std::move(out));
  });
  if (opt_.offsets)
    broker.set_handler(Type::sync_offsets,
                       [this](protocol::Frame& f, const net::Responder& r) { sync_offsets(f, r); });
  if (opt_.sync) {
    broker.set_ack_gate([this](uint64_t end, std::function<void(Code)> done) {
      await(end, std::move(done));
    });
    arm_timer();
  }
}

ReplicationMaster::~ReplicationMaster() {
  // Not shutdown(): the io_context is stopped by now, parked requests die with it.
  std::multimap<uint64_t, Waiter> left;
  {
    std::lock_guard lk(mu_);
    stopped_ = true;
    left.swap(waiters_);
  }
  timer_.cancel();
  for (auto& [e, w] : left) w.done(Code::flush_slave_timeout);
}

void ReplicationMaster::arm_timer() {
  timer_.expires_after(kTick);
  timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec) return;
    expire();
    std::lock_guard lk(mu_);
    if (!stopped_) arm_timer();
  });
}

void ReplicationMaster::expire() {
  auto now = std::chrono::steady_clock::now();
  std::vector<std::function<void(Code)>> late;
  Code code = Code::flush_slave_timeout;
  {
    std::lock_guard lk(mu_);
    // Sends that waited for a first slave: the start grace is over and none came.
    bool none = slaves_.empty() && now >= grace_until_;
    if (none) code = Code::slave_not_available;
    for (auto it = waiters_.begin(); it != waiters_.end();) {
      if (none || it->second.deadline <= now) {
        late.push_back(std::move(it->second.done));
        it = waiters_.erase(it);
      } else {
        ++it;
      }
    }
  }
  for (auto& d : late) d(code);
}

void ReplicationMaster::await(uint64_t end, std::function<void(Code)> done) {
  Code now_code;
  {
    std::lock_guard lk(mu_);
    bool waiting_for_first = !had_slave_ && std::chrono::steady_clock::now() < grace_until_;
    if (stopped_ || (slaves_.empty() && !waiting_for_first)) {
      now_code = Code::slave_not_available;
    } else if (acked_ >= end) {
      now_code = Code::ok;
    } else {
      waiters_.emplace(end, Waiter{end, std::chrono::steady_clock::now() + opt_.timeout, std::move(done)});
      return;
    }
  }
  done(now_code);
}

std::vector<std::string> ReplicationMaster::slaves() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (auto& [id, s] : slaves_)
    if (!s.addr.empty() && std::find(out.begin(), out.end(), s.addr) == out.end()) out.push_back(s.addr);
  return out;
}

uint64_t ReplicationMaster::acked() const {
  std::lock_guard lk(mu_);
  return acked_;
}

protocol::ReplicationStatusResponse ReplicationMaster::status() const {
  protocol::ReplicationStatusResponse out;
  {
    std::lock_guard lk(mu_);
    for (auto& [id, s] : slaves_) out.slaves.push_back({s.addr, true, s.acked, 0, 0});
    for (auto& [addr, acked] : gone_) {
      bool also_connected = false;
      for (auto& c : out.slaves) also_connected = also_connected || c.addr == addr;
      if (!also_connected) out.slaves.push_back({addr, false, acked, 0, 0});
    }
  }
  out.log_end = store_.log_end();
  int64_t now = now_ms();
  for (auto& s : out.slaves) {
    if (s.acked >= out.log_end) continue;
    s.lag_bytes = out.log_end - s.acked;
    // The oldest record the slave lacks: how long it has been waiting.
    auto first = store_.read_log(s.acked, 1);
    storage::RecordView v;
    if (first && storage::decode_record(*first, v) == storage::DecodeResult::ok && v.store_ms > 0)
      s.lag_ms = static_cast<uint64_t>(std::max<int64_t>(0, now - v.store_ms));
  }
  return out;
}

void ReplicationMaster::sync_offsets(protocol::Frame& f, const net::Responder& r) {
  protocol::SyncOffsetsRequest req;
  if (!req.decode(f.payload)) return r.refuse(Code::bad_request, "sync_offsets request: malformed payload");
  if (!req.offsets.empty()) {
    // Committed on the slave while this master was away (or lost by its kill -9).
    // Never ahead of this log (it may have lost an unflushed tail).
    for (auto& o : req.offsets)
      o.offset = std::min<int64_t>(o.offset, static_cast<int64_t>(store_.queue_info(o.q.topic, o.q.queue).max_offset));
    if (size_t n = opt_.offsets->merge(req.offsets)) {
      std::string who = r.peer();
      {
        std::lock_guard lk(mu_);
        if (auto it = slaves_.find(r.connection_id()); it != slaves_.end() && !it->second.addr.empty())
          who = it->second.addr;  // its address, not the port of its connection
      }
      spdlog::info("took {} consumer offsets from slave {} (higher than this master's)", n, who);
    }
  }
  protocol::SyncOffsetsResponse resp;
  resp.version = opt_.offsets->version();
  resp.has_table = resp.version != req.known_version;
  if (resp.has_table) resp.offsets = opt_.offsets->snapshot();
  std::string out;
  resp.encode(out);
  r.reply(Code::ok, std::move(out));
}

void ReplicationMaster::shutdown() {
  std::multimap<uint64_t, Waiter> left;
  {
    std::lock_guard lk(mu_);
    if (stopped_) return;
    stopped_ = true;
    left.swap(waiters_);
  }
  // The timer stops re-arming (cancel() is not safe from another thread).
  parking_.shutdown();
  for (auto& [e, w] : left) w.done(Code::flush_slave_timeout);
}

void ReplicationMaster::connection_closed(uint64_t id) {
  std::multimap<uint64_t, Waiter> orphaned;
  {
    std::lock_guard lk(mu_);
    auto it = slaves_.find(id);
    if (it == slaves_.end()) return;
    spdlog::info("slave {} disconnected (acknowledged log position {})", it->second.addr, it->second.acked);
    if (!it->second.addr.empty()) gone_[it->second.addr] = it->second.acked;
    slaves_.erase(it);
    acked_ = 0;
    for (auto& [i, s] : slaves_) acked_ = std::max(acked_, s.acked);
    // The last slave went: what waits for it is answered now, as a send arriving now
    // would be, rather than at --replication-timeout.
    if (slaves_.empty()) orphaned.swap(waiters_);
  }
  for (auto& [e, w] : orphaned) w.done(Code::slave_not_available);
}

void ReplicationMaster::replicate(protocol::Frame& f, const net::Responder& r) {
  protocol::ReplicateRequest req;
  if (!req.decode(f.payload)) return r.refuse(Code::bad_request, "replicate request: malformed payload");
  std::vector<std::function<void(Code)>> ready;
  bool known;
  {
    std::lock_guard lk(mu_);
    known = slaves_.count(r.connection_id()) > 0;
  }
  // Retention deleted the start of this log. A new, empty slave copies it from its first
  // byte still kept (RocketMQ's slaves start so too): it is answered from there, and its
  // store starts its log at that position. A slave that holds a part of what was deleted
  // can never be given the rest, and is not counted as connected.
  uint64_t start = store_.log_start();
  uint64_t pos = req.pos == 0 ? start : req.pos;
  if (req.pos > 0 && req.pos < start) {
    if (refused_log_.due())
      spdlog::error("refused slave {} (from {}): it asks for log position {}, below this master's log start {}",
                    req.slave_addr, r.peer(), req.pos, start);
    return r.fail(Code::conflict,
                  fmt::format("master refuses this slave: its log starts at byte {} (retention deleted what was "
                              "before), and this slave's log ends at byte {}, below it: move the slave's data "
                              "directory away so that it copies the master afresh (from byte {})",
                              start, req.pos, start));
  }
  // A slave's first request: its log must be this one's (sync replication would count
  // its acknowledgements for records it never got; a copy would splice two logs). It must
  // bring its log's tail to compare: a slave that reconnected without noticing (stopped
  // while this master was replaced) sent none, and only the log ends were compared.
  if (!known && req.pos > 0 && !req.has_tail)
    return r.fail(Code::bad_request, "replicate: the first request of a connection must carry the slave's log "
                                     "tail digest");
  if (!known && req.pos > 0)
    if (Status same = same_log(req); !same) {
      if (refused_log_.due())
        spdlog::error("refused slave {} (from {}): {}", req.slave_addr, r.peer(), same.message());
      return r.fail(Code::conflict, fmt::format("master refuses this slave: {}: if the master lost messages this "
                                                "slave holds, promote it (--role master); else move its data "
                                                "directory away so that it copies the master afresh",
                                                same.message()));
    }
  {
    std::lock_guard lk(mu_);
    auto [it, fresh] = slaves_.try_emplace(r.connection_id());
    if (fresh) {
      had_slave_ = true;
      it->second.addr = req.slave_addr;
      gone_.erase(req.slave_addr);
      spdlog::info("slave {} connected from {} at log position {} (master log end {})", req.slave_addr,
                   r.peer(), req.pos, store_.log_end());
    }
    // The slave's log end is fdatasync'd on the slave: that is its report.
    it->second.acked = std::max(it->second.acked, req.pos);
    acked_ = std::max(acked_, it->second.acked);
    while (!waiters_.empty() && waiters_.begin()->first <= acked_) {
      ready.push_back(std::move(waiters_.begin()->second.done));
      waiters_.erase(waiters_.begin());
    }
  }
  for (auto& d : ready) d(Code::ok);

  size_t max_bytes = std::clamp<size_t>(req.max_bytes, 4096, opt_.max_chunk);
  // Answers with what is there; false when nothing is and the wait goes on.
  auto attempt = [this, r, pos, max_bytes](bool final) {
    auto data = store_.read_log(pos, max_bytes);
    if (!data) {
      r.fail(store_code(data.status()), data.status().message());
      return true;
    }
    if (data->empty() && !final) return false;
    protocol::ReplicateResponse resp;
    resp.pos = pos;
    resp.new_segment = !data->empty() && store_.segment_starts_at(pos);
    resp.master_end = store_.log_end();
    std::set<std::string_view> seen;
    std::string_view rest(*data);
    while (!rest.empty()) {
      storage::RecordView v;
      if (storage::decode_record(rest, v) != storage::DecodeResult::ok) break;  // slave checks too
      if (seen.insert(v.topic).second) {
        auto q = topics_.queues(v.topic);
        resp.topics.emplace_back(std::string(v.topic), q ? *q : v.queue + 1);
      }
      rest.remove_prefix(v.bytes.size());
    }
    std::string head;
    resp.encode(head);
    r.reply(Code::ok, std::move(head), std::move(*data));
    return true;
  };
  if (attempt(req.wait_ms == 0)) return;
  Millis wait(std::min<uint32_t>(req.wait_ms, 60000));
  if (!parking_.park(r.connection_id(), wait, attempt)) attempt(true);
}

Status ReplicationMaster::same_log(const protocol::ReplicateRequest& req) const {
  uint64_t end = store_.log_end();
  if (req.pos > end)
    return Status::invalid(fmt::format("the slave's log ends at {}, past this master's log end {} (the master's "
                                       "data was replaced or lost, or the slave followed another master)",
                                       req.pos, end));
  if (!req.has_tail) return Status::invalid("the slave sent no log tail to compare");  // refused by the caller already
  auto crc = store_.log_digest(req.tail_from, req.pos);
  if (crc && *crc == req.tail_crc) return Status::ok();
  return Status::invalid(fmt::format("the slave's log differs from this master's before position {} (the master's "
                                     "data was replaced, or the slave followed another master)",
                                     req.pos));
}

// ---- held offset tables ------------------------------------------------------

void HeldOffsets::hold(std::vector<protocol::GroupOffset> table) {
  // A newer snapshot of the master's table supersedes an unbounded or a second
  // waiting one: its bound will be at least theirs. The oldest bounded table
  // stays, so its fixed bound is reached while the slave catches up.
  if (unbounded() || held_.size() >= 2)
    held_.back() = Held{std::nullopt, std::move(table)};
  else
    held_.push_back(Held{std::nullopt, std::move(table)});
}

void HeldOffsets::bound(uint64_t master_end) {
  for (auto& h : held_)
    if (!h.bound) h.bound = master_end;
}

std::vector<std::vector<protocol::GroupOffset>> HeldOffsets::release(uint64_t log_end) {
  std::vector<std::vector<protocol::GroupOffset>> out;
  while (!held_.empty() && held_.front().bound && *held_.front().bound <= log_end) {
    out.push_back(std::move(held_.front().table));
    held_.pop_front();
  }
  return out;
}

// ---- slave -------------------------------------------------------------------

ReplicationSlave::ReplicationSlave(storage::MessageStore& store, TopicRegistry& topics,
                                   std::string master, std::string own_addr, ReplicationOptions options)
    : store_(store),
      topics_(topics),
      master_(std::move(master)),
      own_addr_(std::move(own_addr)),
      opt_(options) {}

ReplicationSlave::~ReplicationSlave() { stop(); }

void ReplicationSlave::start() {
  store_.set_replica(true);
  io_ = std::make_unique<net::IoThread>();
  net::ChannelOptions co;
  co.client_name = "mq-broker/slave";
  co.security = opt_.security;
  channel_ = net::Channel::create(io_->io(), master_, co);
  thread_ = std::thread([this] { run(); });
}

void ReplicationSlave::stop() {
  {
    std::lock_guard lk(mu_);
    if (stop_) return;
    stop_ = true;
  }
  cv_.notify_all();
  if (channel_) channel_->close();
  if (thread_.joinable()) thread_.join();
  channel_.reset();
  io_.reset();
}

void ReplicationSlave::backoff_sleep(Millis d) {
  std::unique_lock lk(mu_);
  cv_.wait_for(lk, d, [&] { return stop_; });
}

void ReplicationSlave::run() {
  name_this_thread("mq-repl-slave");
  Millis backoff(100);
  std::string last_error;
  for (;;) {
    {
      std::lock_guard lk(mu_);
      if (stop_) break;
    }
    Status err;
    bool ok = step(err);
    if (ok && opt_.offsets && offsets_supported_ && std::chrono::steady_clock::now() >= next_sync_) {
      next_sync_ = std::chrono::steady_clock::now() + opt_.offsets_interval;
      ok = sync_offsets(err);
    }
    if (ok) {
      backoff = Millis(100);
      last_error.clear();
      continue;
    }
    {
      std::lock_guard lk(mu_);
      if (stop_) break;
    }
    if (connected_) {
      spdlog::warn("replication from master {} interrupted: {}", master_, err.message());
      connected_ = false;
      caught_up_ = false;
    } else if (err.message() != last_error) {
      spdlog::warn("replication from master {}: {}; retrying", master_, err.message());
    }
    last_error = err.message();
    backoff_sleep(backoff);
    backoff = std::min(backoff * 2, kSlaveRetryMax);
  }
}

bool ReplicationSlave::step(Status& err) {
  protocol::ReplicateRequest req;
  // A store with no record asks from 0 wherever its log starts (an earlier first copy
  // from a master's later start may have failed): the master answers from its start.
  bool fresh = store_.log_end() == store_.log_start() && store_.holds_no_record();
  req.pos = fresh ? 0 : store_.log_end();
  if (!connected_ && !learn_topics(fresh, err)) return false;
  req.max_bytes = opt_.max_chunk;
  // A held table needs a bound: ask for the master's log end at once.
  req.wait_ms = held_.unbounded() ? 0 : 1000;
  req.slave_addr = own_addr_;
  // What the master compares with its log before it takes this slave: on the first
  // request after (re)connecting, the one a new master connection checks (a dropped
  // connection or a restarted master fails the request in flight, so connected_ is false
  // again by then). Not per request: a 4 KiB read each would tax sync replication.
  if (req.pos > 0 && !connected_)
    if (auto tail = store_.log_tail_digest(req.pos, 4096)) {
      req.has_tail = true;
      req.tail_from = tail->first;
      req.tail_crc = tail->second;
    }
  std::string payload;
  req.encode(payload);
  auto res = channel_->call(Type::replicate, std::move(payload), Millis(req.wait_ms) + Millis(10000));
  if (!res) {
    err = res.status();
    return false;
  }
  if (res->header.status == Code::unknown_type) {  // a slave (maybe this broker itself)
    err = Status::invalid(fmt::format("{} ({}): --master must name a master",
                                      protocol::status_from_response(res->header.status, res->payload).message(),
                                      master_));
    return false;
  }
  if (res->header.status != Code::ok) {
    err = protocol::status_from_response(res->header.status, res->payload);
    return false;
  }
  protocol::ReplicateResponse resp;
  if (!resp.decode(res->payload)) {
    err = Status::corruption("replicate response: malformed payload");
    return false;
  }
  // An empty slave of a master whose retention deleted its log's start is answered from
  // the first byte the master still has: this log starts there too.
  // (An empty answer from there: nothing to copy yet.)
  bool from_start = fresh && resp.pos > 0;
  if (resp.pos != req.pos && !from_start) {
    err = Status::corruption(fmt::format("replicate response at {}, asked for {}", resp.pos, req.pos));
    return false;
  }
  if (fresh && resp.pos != store_.log_start() && !resp.records.empty()) {
    if (auto st = store_.start_log_at(resp.pos); !st) {
      err = st.with_context("starting the log where the master's starts");
      return false;
    }
    if (resp.pos > 0)
      spdlog::info("master {} kept its log from position {} on (retention deleted what was before): this "
                   "slave's log starts there",
                   master_, resp.pos);
    else
      spdlog::info("master {} keeps its log from position 0: this slave's log starts there again", master_);
  }
  // Queues whose records retention deleted on the master count on from its offsets here too.
  if (fresh && resp.pos > 0 && !resp.records.empty()) {
    for (auto& [t, q, offset] : empty_queues_)
      if (auto st = store_.start_queue_at(t, q, offset); !st) {
        err = st.with_context(fmt::format("starting {} queue {} at the master's offset {}", t, q, offset));
        return false;
      }
    if (!empty_queues_.empty())
      spdlog::info("{} queues of master {} keep no record (retention deleted them): they count on here from "
                   "the master's offsets",
                   empty_queues_.size(), master_);
    empty_queues_.clear();
  }
  if (!connected_) {
    connected_ = true;
    spdlog::info("replicating from master {} at log position {} (master log end {})", master_, req.pos,
                 resp.master_end);
    // A new connection (maybe a restarted master): offsets are synced at once,
    // and everything this slave holds is offered to the master again.
    known_version_ = protocol::kNoVersion;
    master_view_.clear();
    held_.clear();  // tables of an earlier connection (maybe another master process): dropped
    offsets_supported_ = true;  // the master may have been upgraded
    next_sync_ = {};
  }
  // Topics first: once the records are visible, pulls must find their topic.
  for (auto& [t, q] : resp.topics) {
    if (!mq::validate_topic(t, /*allow_reserved=*/true)) continue;
    if (auto st = topics_.ensure(t, std::max<uint32_t>(q, 1)); !st) {
      err = st.status();
      return false;
    }
  }
  if (!resp.records.empty()) {
    if (auto st = store_.append_raw(resp.pos, resp.records, resp.new_segment); !st) {
      err = st.with_context("storing replicated records");
      return false;
    }
  }
  uint64_t end = store_.log_end();
  // This answer's master_end was read after every table held now was taken
  // (they arrived before this request was sent): it bounds them.
  held_.bound(resp.master_end);
  for (auto& table : held_.release(end)) {
    size_t changed = opt_.offsets->merge(table);
    if (changed) spdlog::debug("took {} consumer offsets from master {}", changed, master_);
  }
  // master_end may count bytes written but not yet visible there: an empty
  // answer (after the long-poll) also means nothing is left to copy.
  if (!caught_up_ && (resp.records.empty() || end >= resp.master_end)) {
    caught_up_ = true;
    spdlog::info("caught up with master {} at log position {}", master_, end);
  }
  return true;
}

bool ReplicationSlave::learn_topics(bool fresh, Status& err) {
  empty_queues_.clear();
  std::string payload;
  ByteWriter(payload).str16("");
  auto res = channel_->call(Type::topic_info, std::move(payload), Millis(10000));
  if (!res) {
    err = res.status();
    return false;
  }
  // Not answered (e.g. this slave's user may not read): topics come with their records.
  if (res->header.status != Code::ok) {
    spdlog::debug("topic info from master {}: {}", master_,
                  protocol::status_from_response(res->header.status, res->payload).message());
    return true;
  }
  protocol::TopicInfoResponse resp;
  if (!resp.decode(res->payload)) {
    err = Status::corruption("topic info from the master: malformed payload");
    return false;
  }
  for (auto& t : resp.topics) {
    if (!mq::validate_topic(t.topic, /*allow_reserved=*/true)) continue;
    if (auto st = topics_.ensure(t.topic, std::max<uint32_t>(static_cast<uint32_t>(t.queues.size()), 1)); !st) {
      err = st.status();
      return false;
    }
    if (fresh)
      for (auto& q : t.queues)
        if (q.max_offset > 0 && q.min_offset == q.max_offset) empty_queues_.emplace_back(t.topic, q.queue, q.max_offset);
  }
  return true;
}

bool ReplicationSlave::sync_offsets(Status& err) {
  protocol::SyncOffsetsRequest req;
  req.known_version = known_version_;
  auto local = opt_.offsets->snapshot();
  req.offsets = offsets_ahead(local, master_view_);
  std::string payload;
  req.encode(payload);
  auto res = channel_->call(Type::sync_offsets, std::move(payload), Millis(10000));
  if (!res) {
    err = res.status();
    return false;
  }
  if (res->header.status == Code::unknown_type) {
    spdlog::warn("master {} does not replicate consumer offsets (an older version): a promoted slave "
                 "starts groups without them",
                 master_);
    offsets_supported_ = false;
    return true;
  }
  if (res->header.status != Code::ok) {
    err = protocol::status_from_response(res->header.status, res->payload).with_context("syncing offsets");
    return false;
  }
  protocol::SyncOffsetsResponse resp;
  if (!resp.decode(res->payload)) {
    err = Status::corruption("sync_offsets response: malformed payload");
    return false;
  }
  if (!req.offsets.empty())
    spdlog::debug("offered {} consumer offsets committed here to master {}", req.offsets.size(), master_);
  if (resp.has_table) {
    // Adopted by step() once this log holds what the master's held (see HeldOffsets).
    master_view_ = resp.offsets;
    held_.hold(std::move(resp.offsets));
    spdlog::debug("offsets of master {} held until this log reaches the master's log end (now {})",
                  master_, store_.log_end());
  }
  known_version_ = resp.version;
  return true;
}

}  // namespace mq::broker

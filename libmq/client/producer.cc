#include "client/producer.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "client/topic_info.h"
#include "protocol/frame.h"
#include "protocol/message_id.h"
#include "util/bytes.h"

namespace mq::client {

namespace {

using protocol::Code;

// Worth another attempt (possibly on another master)?
bool retryable(Code c) {
  switch (c) {
    case Code::not_master:
    case Code::busy:
    case Code::disk_full:
    case Code::io_error:
    case Code::corrupt_record:  // damaged on the way; our copy is intact
    case Code::internal: return true;
    default: return false;
  }
}

// Before retry number `attempt` (1, 2, ...) on the master that just failed:
// kRetryPauseFirst, doubling up to kRetryPauseMax, and never more than half
// of what is left of the budget (the attempt needs the other half).
constexpr Millis kRetryPauseFirst{100};
constexpr Millis kRetryPauseMax{1000};

}  // namespace

Millis retry_pause(int attempt, int64_t budget_left_ms) {
  if (attempt < 1 || budget_left_ms <= 0) return Millis(0);
  int64_t pause = kRetryPauseFirst.count();
  for (int i = 1; i < attempt && pause < kRetryPauseMax.count(); ++i) pause *= 2;
  pause = std::min<int64_t>(pause, kRetryPauseMax.count());
  return Millis(std::min(pause, budget_left_ms / 2));
}

namespace {

bool is_send_status(Code c) {
  return c == Code::ok || c == Code::flush_disk_timeout || c == Code::flush_slave_timeout ||
         c == Code::slave_not_available;
}

}  // namespace

Result<std::unique_ptr<Producer>> Producer::create(Cluster& cluster, std::string topic, ProducerOptions opt) {
  if (opt.mode == SendMode::sync) {
    opt.window = 1;
    opt.batch_msgs = 1;
  }
  if (opt.window == 0) opt.window = 1;
  opt.batch_msgs = std::clamp<size_t>(opt.batch_msgs, 1, opt.window);
  std::vector<size_t> brokers;
  std::vector<uint32_t> counts;
  std::vector<Status> failed;  // masters that did not answer: said when others did
  uint32_t max_size = 0;
  // Keys hash over the masters' queues in one order for every producer, whatever order -b
  // lists them in (or -b names one master of a pair by another address): the addresses
  // the masters advertise (in hello: every master here answered it), as RocketMQ orders
  // its route by broker name.
  std::vector<size_t> masters = cluster.masters();
  auto name = [&](size_t i) -> const std::string& {
    auto& n = cluster.node(i);
    return n.hello.broker_addr.empty() ? n.address : n.hello.broker_addr;
  };
  std::stable_sort(masters.begin(), masters.end(), [&](size_t a, size_t b) { return name(a) < name(b); });
  for (size_t i : masters) {
    auto& n = cluster.node(i);
    auto info = fetch_topic_info(n, topic, opt.timeout);
    if (!info) {
      failed.push_back(info.status());
      continue;
    }
    uint32_t count = n.hello.default_queues > 0 ? n.hello.default_queues : 4;
    for (auto& t : info->topics)
      if (t.topic == topic && !t.queues.empty()) count = static_cast<uint32_t>(t.queues.size());
    if (opt.queue && *opt.queue >= count)
      return Status::not_found(fmt::format("queue {} does not exist: topic {} has {} queues on {}", *opt.queue, topic,
                                         count, n.address));
    brokers.push_back(i);
    counts.push_back(count);
    if (n.hello.max_message_size > 0 && (max_size == 0 || n.hello.max_message_size < max_size))
      max_size = n.hello.max_message_size;
  }
  // When none answered, the last cause is the error (the caller says it) and the others
  // are said here; each is said once.
  for (size_t k = 0; k < failed.size(); ++k)
    if (!brokers.empty() || k + 1 < failed.size()) spdlog::warn("{}", failed[k].message());
  if (brokers.empty()) {
    if (!failed.empty()) return failed.back();
    // Reachable, but only slaves.
    std::string names;
    for (size_t i = 0; i < cluster.size(); ++i) {
      if (!names.empty()) names += ", ";
      names += cluster.node(i).address;
    }
    return Status::unavailable(fmt::format("no master broker reachable among {}", names));
  }
  // The slaves each master named in hello become nodes now (pair_of may add nodes:
  // before any request is out), so that one listed address per pair is enough for
  // look_for_promotion to find a promoted slave.
  for (size_t i : brokers) (void)cluster.pair_of(i);
  std::unique_ptr<Producer> p(
      new Producer(cluster, std::move(topic), opt, QueueSelector(std::move(brokers), std::move(counts), opt.queue)));
  p->max_message_size_ = max_size;
  return p;
}

Producer::Producer(Cluster& cluster, std::string topic, ProducerOptions opt, QueueSelector selector)
    : cluster_(cluster), topic_(std::move(topic)), opt_(opt), selector_(std::move(selector)),
      alive_(std::make_shared<Alive>()) {
  open_.resize(cluster_.size());
  alive_->producer = this;
}

Producer::~Producer() {
  {
    std::lock_guard lk(alive_->mu);
    alive_->producer = nullptr;
  }
  // Callbacks hold `this`: wait until every message is done (each attempt has
  // a timeout, so this ends).
  std::unique_lock lock(mu_);
  cv_.wait(lock, [&] { return outstanding_ == 0; });
}

Route Producer::route_for(const Pending& p, std::optional<size_t> exclude) {
  std::optional<std::string_view> key;
  if (p.key) key = *p.key;
  return selector_.select(key, [this](size_t b) { return cluster_.available(b); }, exclude);
}

void Producer::reject(uint64_t line, std::vector<Receipt>& ready) {
  std::lock_guard lock(mu_);
  Receipt r;
  r.line = line;
  r.status = "FAILED";
  receipts_.complete(receipts_.open(), std::move(r));
  receipts_.drain(ready);
}

void Producer::submit(uint64_t line, storage::Message msg, std::vector<Receipt>& ready) {
  Pending p;
  {
    std::unique_lock lock(mu_);
    receipts_.drain(ready);
    if (receipts_.size() >= opt_.window) {
      // The window may be full of messages still in open batches: send them
      // first (unlocked: a failing send completes receipts under mu_).
      lock.unlock();
      flush();
      lock.lock();
      for (;;) {
        receipts_.drain(ready);
        if (receipts_.size() < opt_.window) break;
        cv_.wait(lock);
      }
    }
    p.seq = receipts_.open();
    ++outstanding_;
    ++stats_.submitted;
  }
  p.line = line;
  int64_t now = 0;  // one clock read for both
  if (msg.born_ms == 0) msg.born_ms = now = now_ms();
  if (msg.id == storage::MessageId{}) msg.id = now ? protocol::new_message_id(now) : protocol::new_message_id();
  msg.topic = topic_;
  p.id = msg.id;
  if (!msg.key.empty()) p.key = msg.key;
  Route route = route_for(p, std::nullopt);
  msg.queue = route.queue;
  msg.offset = 0;
  msg.store_ms = 0;

  // A batch never outgrows what a frame holds: the open one is sent first rather than
  // made larger than batch_bytes (or the broker's message size plus half the margin the
  // broker keeps between it and --max-frame, when that is smaller).
  size_t limit = opt_.batch_bytes;
  if (max_message_size_ > 0) limit = std::min<size_t>(limit, size_t{max_message_size_} + protocol::kFrameMargin / 2);
  auto& b = open_[route.broker];
  p.len = storage::encoded_size(msg);
  if (b && !b->msgs.empty() && b->records.size() + p.len > limit) send_batch(std::move(b));
  if (!b) b = new_batch(route.broker, limit);
  p.at = b->records.size();
  storage::encode_record(msg, b->records);  // in place: no string per message
  b->msgs.push_back(std::move(p));
  if (b->msgs.size() >= opt_.batch_msgs || b->records.size() >= limit) send_batch(std::move(b));
}

std::shared_ptr<Producer::Batch> Producer::new_batch(size_t broker, size_t limit) const {
  auto b = std::make_shared<Batch>();
  b->msgs.reserve(opt_.batch_msgs);
  b->records.reserve(std::min(limit, size_t{64} << 10));
  b->broker = broker;
  b->deadline_ms = now_ms() + opt_.timeout.count();
  return b;
}

void Producer::flush() {
  for (auto& b : open_)
    if (b) send_batch(std::move(b));
}

void Producer::poll(std::vector<Receipt>& ready) {
  std::lock_guard lock(mu_);
  receipts_.drain(ready);
}

void Producer::finish(std::vector<Receipt>& ready) {
  flush();
  std::unique_lock lock(mu_);
  for (;;) {
    receipts_.drain(ready);
    if (receipts_.empty()) return;
    cv_.wait(lock);
  }
}

uint64_t Producer::outstanding() const {
  std::lock_guard lock(mu_);
  return outstanding_;
}

ProducerStats Producer::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

void Producer::send_batch(std::shared_ptr<Batch> b) {
  std::string payload;
  payload.reserve(4 + b->records.size());
  ByteWriter(payload).u32(static_cast<uint32_t>(b->msgs.size()));
  payload.append(b->records);
  auto& ch = cluster_.node(b->broker).channel;

  if (opt_.mode == SendMode::oneway) {
    ch->oneway(protocol::Type::send, std::move(payload), [this, b](Status s) {
      if (!s) {
        // The next messages go to another master while this one fails; one that could
        // not be written at all (no connection) is tried again like any send: it cannot
        // be stored twice.
        cluster_.mark_failed(b->broker, opt_.avoid_ms);
        if (s.message().rfind("cannot connect", 0) == 0) return retry_or_fail(b, reach_error(s), false, true);
      }
      for (auto& m : b->msgs) {
        Receipt r;
        r.broker = cluster_.node(b->broker).address;
        if (s) {
          r.status = "SENT";
          r.ok = true;
        } else {
          r.status = "FAILED";
          r.error = reach_error(s).message();
        }
        complete(m, std::move(r));
      }
    });
    return;
  }
  if (hung(b->broker)) {
    retry_or_fail(std::move(b),
                  Status::unavailable(fmt::format("cannot reach {}: it answers nothing (stopped, or cut off): not "
                                                  "sent while it does not answer",
                                                  cluster_.node(b->broker).address)),
                  false, true);
    return;
  }
  int64_t left = b->deadline_ms - now_ms();
  if (left <= 0) {
    retry_or_fail(std::move(b), Status::timeout(fmt::format("send timed out after {}", format_duration(opt_.timeout))),
                  true);
    return;
  }
  // With another master to go to, an attempt waits for half of what is left: a master
  // that hangs (no answer, no reset) then leaves time for a retry there.
  int64_t wait = left;
  if (b->attempt < opt_.retries && left >= 200 && cluster_.masters().size() > 1) wait = left / 2;
  ch->request(protocol::Type::send, std::move(payload), Millis(wait),
              [this, b](Result<protocol::Frame> r) { on_response(b, std::move(r)); });
}

void Producer::on_response(std::shared_ptr<Batch> b, Result<protocol::Frame> r) {
  const std::string& addr = cluster_.node(b->broker).address;
  if (r) clear_hung(b->broker);  // it answers
  if (!r) {
    const Status& s = r.status();
    bool never_sent = s.message().rfind("cannot connect", 0) == 0;
    cluster_.mark_failed(b->broker, s.code() == mq::Code::timeout
                                        ? std::min<int64_t>(opt_.avoid_ms, opt_.timeout.count())
                                        : opt_.avoid_ms);
    retry_or_fail(std::move(b), reach_error(s), !never_sent, never_sent);
    return;
  }
  Code code = r->header.status;
  if (is_send_status(code)) {
    protocol::SendResponse resp;
    if (!resp.decode(r->payload) || resp.placed.size() != b->msgs.size()) {
      // Stored or not, we cannot tell; re-sending could duplicate.
      Status bad = Status::corruption(fmt::format("bad send answer from {}", addr));
      for (auto& m : b->msgs) {
        Receipt rc;
        rc.broker = addr;
        rc.status = "FAILED";
        rc.maybe_stored = true;
        rc.error = bad.message();
        complete(m, std::move(rc));
      }
      return;
    }
    cluster_.mark_ok(b->broker);
    unreachable_.store(false, std::memory_order_relaxed);
    full_.store(false, std::memory_order_relaxed);
    std::vector<Receipt> rs(b->msgs.size());
    const std::string_view status = protocol::code_name(code);
    for (size_t i = 0; i < rs.size(); ++i) {
      Receipt& rc = rs[i];
      rc.broker = addr;
      rc.queue = resp.placed[i].first;
      rc.offset = resp.placed[i].second;
      rc.status = status;
      rc.ok = code == Code::ok;
      rc.maybe_stored = !rc.ok;
      if (!rc.ok) rc.error = fmt::format("{} from {}", rc.status, addr);
    }
    complete_all(b->msgs, rs);
    return;
  }
  Status why = protocol::status_from_response(code, r->payload).with_context(fmt::format("send to {}", addr));
  if (retryable(code)) {
    cluster_.mark_failed(b->broker, std::min<int64_t>(opt_.avoid_ms, 5000));
    retry_or_fail(std::move(b), why, false, false, code == Code::disk_full);
    return;
  }
  b->attempt = opt_.retries;  // not worth another attempt
  retry_or_fail(std::move(b), why, false);
}

void Producer::look_for_promotion(size_t b) {
  int64_t now = now_ms();
  {
    std::lock_guard lk(promotion_mu_);
    auto& next = promotion_next_ms_[b];
    if (now < next) return;
    next = now + 1000;
  }
  const BrokerNode& m = cluster_.node(b);
  for (size_t j = 0; j < cluster_.size(); ++j) {
    const BrokerNode& n = cluster_.node(j);
    auto master_named = [&](const std::string& a) {
      return m.reachable && std::find(m.hello.slaves.begin(), m.hello.slaves.end(), a) != m.hello.slaves.end();
    };
    // Its slave, as the slave or the master said in hello at the start (a slave only the
    // master named was never asked hello: its address is the one the master gave).
    bool its = n.reachable ? n.hello.role == protocol::Role::slave &&
                                 (n.hello.master_addr == m.address ||
                                  (m.reachable && n.hello.master_addr == m.hello.broker_addr) ||
                                  master_named(n.hello.broker_addr))
                           : master_named(n.address);
    if (j == b || !its || selector_.has(j)) continue;
    std::string payload;
    ByteWriter(payload).str16(cluster_.channel_options().client_name);
    n.channel->request(protocol::Type::hello, std::move(payload), opt_.timeout,
                       [alive = alive_, b, j](Result<protocol::Frame> r) {
                         protocol::HelloResponse h;
                         if (!r || r->header.status != Code::ok || !h.decode(r->payload) ||
                             h.role != protocol::Role::master)
                           return;
                         std::lock_guard lk(alive->mu);
                         Producer* p = alive->producer;
                         if (!p || !p->selector_.substitute(b, j)) return;
                         spdlog::warn("{} unreachable, and its slave {} answers as a master now (promoted): "
                                      "sending its queues there",
                                      p->cluster_.node(b).address, p->cluster_.node(j).address);
                         p->cluster_.mark_ok(j);
                         p->unreachable_.store(false, std::memory_order_relaxed);
                       });
  }
}

void Producer::retry_or_fail(std::shared_ptr<Batch> b, const Status& why, bool maybe_stored, bool unreachable,
                             bool full) {
  if (unreachable) look_for_promotion(b->broker);
  int64_t now = now_ms();
  bool known_down = unreachable && unreachable_.load(std::memory_order_relaxed);
  bool known_full = full && full_.load(std::memory_order_relaxed);
  if (b->attempt < opt_.retries && now < b->deadline_ms && !known_down) {
    // Regroup per broker: each message picks its route again, avoiding the one that failed.
    std::vector<std::shared_ptr<Batch>> next(cluster_.size());
    std::vector<Pending> stay;  // known_full: routed to the same broker again
    for (auto& m : b->msgs) {
      Route rt = route_for(m, b->broker);
      if (known_full && rt.broker == b->broker) {
        stay.push_back(std::move(m));
        continue;
      }
      char* rec = b->records.data() + m.at;
      storage::stamp_record(rec, rt.queue, 0, 0);
      auto& nb = next[rt.broker];
      if (!nb) {
        nb = std::make_shared<Batch>();
        nb->broker = rt.broker;
        nb->attempt = b->attempt + 1;
        nb->deadline_ms = b->deadline_ms;
      }
      m.at = nb->records.size();
      nb->records.append(rec, m.len);
      nb->msgs.push_back(std::move(m));
    }
    if (stay.size() < b->msgs.size())
      spdlog::debug("retrying {} message{} after: {}", b->msgs.size() - stay.size(),
                    b->msgs.size() - stay.size() == 1 ? "" : "s", why.message());
    b->msgs = std::move(stay);
    for (auto& nb : next) {
      if (!nb) continue;
      // Another master: at once. The same one again (none other is usable):
      // after a pause, so a restarting broker is not handed every attempt in
      // its first milliseconds.
      Millis pause = nb->broker == b->broker ? retry_pause(nb->attempt, nb->deadline_ms - now) : Millis(0);
      if (pause.count() <= 0) {
        send_batch(std::move(nb));
        continue;
      }
      auto timer = std::make_shared<net::asio::steady_timer>(cluster_.io().io(), pause);
      timer->async_wait([this, nb, timer](const boost::system::error_code&) { send_batch(nb); });
    }
    if (b->msgs.empty()) return;
  }
  if (unreachable) unreachable_.store(true, std::memory_order_relaxed);
  if (full) full_.store(true, std::memory_order_relaxed);
  if (why.code() == mq::Code::timeout) mark_suspect(b->broker);
  for (auto& m : b->msgs) {
    Receipt rc;
    rc.broker = cluster_.node(b->broker).address;
    rc.status = "FAILED";
    rc.maybe_stored = maybe_stored;
    rc.error = why.message();
    complete(m, std::move(rc));
  }
}

void Producer::mark_suspect(size_t b) {
  {
    std::lock_guard lk(hung_mu_);
    if (!hung_.emplace(b, false).second) return;
  }
  probe_hung(b);
}

bool Producer::hung(size_t b) {
  std::lock_guard lk(hung_mu_);
  auto it = hung_.find(b);
  return it != hung_.end() && it->second;
}

bool Producer::watched(size_t b) {
  std::lock_guard lk(hung_mu_);
  return hung_.count(b) > 0;
}

void Producer::clear_hung(size_t b) {
  std::lock_guard lk(hung_mu_);
  hung_.erase(b);
}

void Producer::probe_hung(size_t b) {
  std::string payload;
  ByteWriter(payload).str16(cluster_.channel_options().client_name);
  int64_t sent = now_ms();
  cluster_.node(b).channel->request(
      protocol::Type::hello, std::move(payload), opt_.timeout, [alive = alive_, b, sent](Result<protocol::Frame> r) {
        std::lock_guard lk(alive->mu);
        Producer* p = alive->producer;
        if (!p) return;
        {
          std::lock_guard hl(p->hung_mu_);
          auto it = p->hung_.find(b);
          if (it == p->hung_.end()) return;  // a send was answered meanwhile
          if (r) {                           // answered: sends go to it again
            if (it->second) spdlog::debug("{} answers again", p->cluster_.node(b).address);
            p->hung_.erase(it);
          } else if (!it->second) {
            it->second = true;
            spdlog::debug("{} answers nothing: sends to it fail at once until it answers hello",
                          p->cluster_.node(b).address);
            p->unreachable_.store(true, std::memory_order_relaxed);
          }
        }
        if (r) {
          p->cluster_.mark_ok(b);
          return;
        }
        // Still nothing: other masters keep taking its sends meanwhile; asked again at
        // once after a timeout, 200 ms after a quick failure (refused).
        p->cluster_.mark_failed(b, std::min<int64_t>(p->opt_.avoid_ms, p->opt_.timeout.count()));
        auto pause = Millis(std::max<int64_t>(0, 200 - (now_ms() - sent)));
        auto timer = std::make_shared<net::asio::steady_timer>(p->cluster_.io().io(), pause);
        timer->async_wait([alive, b, timer](const boost::system::error_code&) {
          std::lock_guard lk2(alive->mu);
          if (Producer* p = alive->producer; p && p->watched(b)) p->probe_hung(b);
        });
      });
}

void Producer::complete_all(const std::vector<Pending>& msgs, std::vector<Receipt>& rs) {
  std::lock_guard lock(mu_);
  for (size_t i = 0; i < msgs.size(); ++i) complete_locked(msgs[i], std::move(rs[i]));
  cv_.notify_all();
}

void Producer::complete(const Pending& p, Receipt r) {
  std::lock_guard lock(mu_);
  complete_locked(p, std::move(r));
  cv_.notify_all();
}

void Producer::complete_locked(const Pending& p, Receipt r) {
  r.line = p.line;
  r.id = p.id;
  if (r.ok) {
    ++stats_.acked;
  } else {
    ++stats_.failed;
    if (r.maybe_stored) ++stats_.maybe_stored;
    if (stats_.first_error.empty()) stats_.first_error = r.error;
  }
  receipts_.complete(p.seq, std::move(r));
  --outstanding_;
}

}  // namespace mq::client

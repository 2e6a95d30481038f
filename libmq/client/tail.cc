#include "client/tail.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>

#include "client/topic_info.h"
#include "protocol/messages.h"
#include "util/bytes.h"

namespace mq::client {

// What the io thread hands to run(); kept alive by the callbacks so the Tail
// may go away while long-polls are still out.
struct Tail::Shared {
  std::mutex mu;
  std::condition_variable cv;
  std::deque<std::pair<size_t, Result<protocol::Frame>>> results;  // (queue, pull answer)
  std::deque<std::pair<size_t, Result<protocol::Frame>>> probes;   // (source, master's hello)
};

Result<std::vector<std::string>> split_tags(std::string_view expr) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t bar = expr.find("||", start);
    auto part = expr.substr(start, bar == std::string_view::npos ? std::string_view::npos : bar - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (part.empty()) return Status::invalid(fmt::format("invalid tag expression '{}': empty tag", expr));
    out.emplace_back(part);
    if (bar == std::string_view::npos) break;
    start = bar + 2;
  }
  return out;
}

Tail::Tail(Cluster& cluster, TailOptions opt)
    : cluster_(cluster), opt_(std::move(opt)), shared_(std::make_shared<Shared>()) {
  for (auto& t : opt_.tags) tag_hashes_.push_back(storage::tag_hash(t));
  // pair_of may add nodes: done here, before any request is out.
  for (size_t n : cluster_.read_sources()) {
    Source s;
    s.route = cluster_.pair_of(n);
    s.serving = n;
    cluster_.say_if_slave_read(n);  // (the move back once the master answers is said too)
    sources_.push_back(std::move(s));
  }
  for (size_t n : cluster_.unaccounted()) {
    Source s;
    s.route = {n};
    s.serving = n;
    s.absent = true;
    sources_.push_back(std::move(s));
  }
  if (opt_.to_end) opt_.wait_ms = 0;
}

Tail::~Tail() = default;

Status Tail::resolve(Source& s, bool first) {
  auto& node = cluster_.node(s.serving);
  auto info = fetch_topic_info(node, opt_.topic, opt_.timeout);
  if (!info) return info.status();
  const protocol::TopicStat* topic = nullptr;
  for (auto& t : info->topics)
    if (t.topic == opt_.topic) topic = &t;
  s.first_pending = false;
  if (topic == nullptr) {
    if (opt_.to_end) s.resolved = true;  // nothing to read there
    return Status::ok();
  }
  // A broker that answers only after the start: "latest" is where the tail started.
  FromKind from = opt_.from;
  int64_t from_ms = opt_.from_ms;
  if (first && started_ && from == FromKind::latest) {
    from = FromKind::time;
    from_ms = start_ms_;
  }
  size_t si = static_cast<size_t>(&s - sources_.data());
  for (auto& q : topic->queues) {
    QueueState qs;
    qs.source = si;
    qs.queue = q.queue;
    if (!first) {
      qs.next = q.min_offset;
    } else {
      switch (from) {
        case FromKind::earliest: qs.next = q.min_offset; break;
        case FromKind::latest: qs.next = q.max_offset; break;
        case FromKind::offset:
          qs.next = std::clamp(opt_.from_offset, q.min_offset, q.max_offset);
          if (opt_.from_offset < q.min_offset)  // said, not silence
            spdlog::warn("{}:{} on {}: offsets {} to {} were deleted (--retention): starting at {}", opt_.topic,
                         q.queue, node.address, opt_.from_offset, q.min_offset - 1, q.min_offset);
          break;
        case FromKind::back: {
          uint64_t lo = std::min(q.min_offset, q.max_offset);
          qs.next = q.max_offset - std::min(opt_.from_offset, q.max_offset - lo);
          break;
        }
        case FromKind::time: {
          protocol::OffsetForTimeRequest req{opt_.topic, q.queue, from_ms};
          std::string p;
          req.encode(p);
          auto fr = node.channel->call(protocol::Type::offset_for_time, std::move(p), opt_.timeout);
          if (fr && fr->header.status != protocol::Code::ok)
            fr = protocol::status_from_response(fr->header.status, fr->payload);
          if (!fr)
            return reach_error(fr.status())
                .with_context(fmt::format("offset for time of queue {} on {}", q.queue, node.address));
          ByteReader br(fr->payload);
          uint64_t off;
          if (!br.u64(off))
            return Status::corruption(fmt::format("bad offset for time answer from {}", node.address));
          qs.next = std::clamp(off, q.min_offset, q.max_offset);
          break;
        }
      }
    }
    spdlog::debug("{} queue {} on {}: from offset {} (range {}..{})", opt_.topic, q.queue, node.address, qs.next,
                  q.min_offset, q.max_offset);
    queues_.push_back(qs);
  }
  s.resolved = true;
  return Status::ok();
}

void Tail::issue_pull(size_t qi) {
  auto& q = queues_[qi];
  q.asked = sources_[q.source].serving;
  auto& node = cluster_.node(q.asked);
  protocol::PullRequest req;
  req.topic = opt_.topic;
  req.queue = q.queue;
  req.offset = q.next;
  req.max_msgs = opt_.max_msgs;
  req.max_bytes = opt_.max_bytes;
  req.wait_ms = opt_.wait_ms;
  req.tag_hashes = tag_hashes_;
  std::string payload;
  req.encode(payload);
  q.in_flight = true;
  node.channel->request(protocol::Type::pull, std::move(payload), opt_.timeout + Millis(opt_.wait_ms),
                        [sh = shared_, qi](Result<protocol::Frame> r) {
                          std::lock_guard lock(sh->mu);
                          sh->results.emplace_back(qi, std::move(r));
                          sh->cv.notify_all();
                        });
}

void Tail::switch_to(Source& s, size_t to) {
  s.serving = to;
  s.next_master_probe_ms = now_ms() + 2000;
}

// Each queue keeps its own next offset across a switch: the logs of a pair
// are byte for byte the same, so the next pull asks the new broker for
// exactly what was not printed yet. A slave behind the master answers
// nothing new until it catches up (next_offset never moves a queue back).
bool Tail::fail_over(Source& s, size_t failed) {
  if (failed != s.serving) return false;  // answered by a broker we already left
  bool all_round = ++s.failures >= s.route.size();
  if (all_round) s.failures = 0;
  if (s.route.size() < 2) return true;
  auto it = std::find(s.route.begin(), s.route.end(), s.serving);
  size_t next = s.route[(static_cast<size_t>(it - s.route.begin()) + 1) % s.route.size()];
  if (!s.warned)
    spdlog::warn("{} unreachable: continuing on {}{}", cluster_.node(s.serving).address, cluster_.node(next).address,
                 next == s.route.front() ? "" : " (a slave)");
  switch_to(s, next);
  return all_round;
}

void Tail::probe_master(size_t si, int64_t now) {
  auto& s = sources_[si];
  if (s.route.empty() || s.serving == s.route.front() || s.probing || now < s.next_master_probe_ms) return;
  s.next_master_probe_ms = now + 2000;
  send_probe(si, s.route.front());
}

void Tail::send_probe(size_t si, size_t node) {
  sources_[si].probing = true;
  std::string payload;
  ByteWriter(payload).str16(cluster_.channel_options().client_name);
  cluster_.node(node)
      .channel->request(protocol::Type::hello, std::move(payload), opt_.timeout,
                        [sh = shared_, si](Result<protocol::Frame> r) {
                          std::lock_guard lock(sh->mu);
                          sh->probes.emplace_back(si, std::move(r));
                          sh->cv.notify_all();
                        });
}

// -e: a queue that cannot be read to its end stops there; the others go on,
// and the run ends with the first such error (exit 1) once they are done.
Status Tail::give_up_queue(QueueState& q, Status why) {
  q.done = true;
  if (unread_.is_ok()) unread_ = std::move(why);  // the first one is what the run ends with
  else spdlog::warn("{}", why.message());         // later ones are said as they come
  return Status::ok();
}

Status Tail::handle(size_t qi, Result<protocol::Frame> r,
                    const std::function<bool(const storage::RecordView&, std::string_view broker)>& on_message, bool& stop) {
  auto& q = queues_[qi];
  q.in_flight = false;
  auto& src = sources_[q.source];
  const std::string& addr = cluster_.node(q.asked).address;
  if (r && r->header.status != protocol::Code::ok) {
    if (r->header.status == protocol::Code::topic_not_found && opt_.to_end) {
      q.done = true;
      return Status::ok();
    }
    Status s = protocol::status_from_response(r->header.status, r->payload)
                   .with_context(fmt::format("pull of queue {} from {}", q.queue, addr));
    if (r->header.status == protocol::Code::bad_request || r->header.status == protocol::Code::denied) return s;
    if (opt_.to_end && (r->header.status == protocol::Code::io_error || r->header.status == protocol::Code::internal))
      return give_up_queue(q, std::move(s));  // the broker cannot read it (a damaged record)
    r = s;
  }
  if (!r) {
    Status s = reach_error(r.status());
    bool all_round = fail_over(src, q.asked);
    if (!all_round) return Status::ok();  // retried on the pair's next broker
    if (opt_.to_end) return s;
    if (!src.warned) spdlog::warn("{} (retrying)", s.message());
    src.warned = true;
    q.retry_at_ms = now_ms() + 1000;
    return Status::ok();
  }
  if (q.asked == src.serving) {
    src.failures = 0;
    src.warned = false;
  }
  protocol::PullResponse resp;
  if (!resp.decode(r->payload))
    return Status::corruption(fmt::format("bad pull answer for queue {} from {}", q.queue, addr));
  std::string_view rest = resp.records;
  while (!rest.empty()) {
    storage::RecordView rv;
    std::string why;
    if (storage::decode_record(rest, rv, &why) != storage::DecodeResult::ok) {
      Status s = Status::corruption(
          fmt::format("corrupt record in queue {} from {} after offset {}: {}", q.queue, addr, q.next, why));
      if (opt_.to_end) return give_up_queue(q, std::move(s));
      return s;
    }
    rest.remove_prefix(rv.bytes.size());
    if (rv.offset < q.next) continue;  // already seen
    q.next = rv.offset + 1;
    if (!opt_.tags.empty() && std::find(opt_.tags.begin(), opt_.tags.end(), rv.tag) == opt_.tags.end()) continue;
    if (!on_message(rv, cluster_.node(src.route.front()).address)) {
      stop = true;
      return Status::ok();
    }
  }
  q.next = std::max(q.next, resp.next_offset);
  if (opt_.to_end && resp.next_offset >= resp.max_offset) q.done = true;
  return Status::ok();
}

Status Tail::run(const std::function<bool(const storage::RecordView&, std::string_view broker)>& on_message,
                 const std::function<bool()>& on_idle, const std::atomic<bool>& stop) {
  if (sources_.empty()) return Status::unavailable("no broker to read from");
  start_ms_ = now_ms();
  std::vector<size_t> absent;
  for (auto& s : sources_) {
    if (s.absent) {
      absent.push_back(s.serving);
      s.warned = true;
      s.resolved = opt_.to_end;  // -e: nothing is read there, the run fails naming it
      continue;
    }
    Status st = resolve(s, true);
    // A refusal (no or wrong credentials, no permission) is the answer, not a broker that
    // is unreachable: the pair's other broker has the same users, and saying "unreachable:
    // continuing on" would send the user after a network problem.
    while (!st && st.code() != Code::permission_denied && s.route.size() > 1 && !fail_over(s, s.serving))
      st = resolve(s, true);
    if (st.code() == Code::permission_denied) return st;
    if (!st) {
      if (opt_.to_end) return st;
      spdlog::warn("{} (retrying)", st.message());
      s.warned = true;
      s.next_probe_ms = now_ms() + 1000;
    }
  }
  if (!absent.empty()) {
    absent_ = unaccounted_error(cluster_, absent, opt_.to_end ? "queues are not read" : "queues are read once back");
    if (!opt_.to_end) spdlog::warn("{} (retrying)", absent_.message());
  }
  started_ = true;
  // Said once, so that a mistyped topic is not just silence (-q hides it).
  bool all_answered = std::none_of(sources_.begin(), sources_.end(), [](auto& s) { return s.warned; });
  if (queues_.empty() && all_answered) say_topic_missing(opt_.topic, opt_.to_end);
  for (;;) {
    if (stop.load()) return Status::ok();
    int64_t now = now_ms();
    for (size_t i = 0; i < sources_.size(); ++i) {
      auto& s = sources_[i];
      if (s.resolved || now < s.next_probe_ms) continue;
      if (s.absent) {
        if (!s.probing) send_probe(i, s.serving);
        s.next_probe_ms = now + 1000;
        continue;
      }
      Status st = resolve(s, s.first_pending);
      if (st.code() == Code::permission_denied) return st;
      if (!st && s.route.size() > 1) (void)fail_over(s, s.serving);
      if (!st) {
        if (opt_.to_end) return st;
        if (!s.warned) spdlog::warn("{} (retrying)", st.message());
        s.warned = true;
      }
      // A topic not there yet is looked up often (its first message shows within
      // ~100 ms); a broker that failed, once a second.
      s.next_probe_ms = now + (st ? 100 : 1000);
    }
    for (size_t i = 0; i < sources_.size(); ++i) probe_master(i, now);
    bool all_done = true;
    for (size_t i = 0; i < queues_.size(); ++i) {
      auto& q = queues_[i];
      if (!q.done && !q.in_flight && q.retry_at_ms <= now) issue_pull(i);
      all_done = all_done && q.done;
    }
    bool all_resolved = std::all_of(sources_.begin(), sources_.end(), [](auto& s) { return s.resolved; });
    if (opt_.to_end && all_resolved && all_done) {
      on_idle();
      return !unread_.is_ok() ? unread_ : absent_;
    }
    std::pair<size_t, Result<protocol::Frame>> item{0, Status::unavailable("none")};
    std::deque<std::pair<size_t, Result<protocol::Frame>>> probes;
    bool got = false;
    bool more = false;
    {
      std::unique_lock lock(shared_->mu);
      auto ready = [&] { return !shared_->results.empty() || !shared_->probes.empty(); };
      if (!ready()) shared_->cv.wait_for(lock, std::chrono::milliseconds(100), ready);
      probes.swap(shared_->probes);
      if (!shared_->results.empty()) {
        item = std::move(shared_->results.front());
        shared_->results.pop_front();
        got = true;
        more = !shared_->results.empty();
      }
    }
    for (auto& [si, r] : probes) {
      auto& s = sources_[si];
      s.probing = false;
      protocol::HelloResponse h;
      bool master = r && r->header.status == protocol::Code::ok && h.decode(r->payload) &&
                    h.role == protocol::Role::master;
      if (s.absent) {
        if (!master) continue;  // asked again in a second
        auto& node = cluster_.node(s.serving);
        node.hello = h;
        node.reachable = true;
        node.error = Status::ok();
        s.absent = false;
        s.warned = false;
        s.next_probe_ms = 0;  // its topic is looked up next
        spdlog::info("{} is back: reading its queues", node.address);
        continue;
      }
      if (!master || s.serving == s.route.front()) continue;
      spdlog::info("{} is back: continuing on it", cluster_.node(s.route.front()).address);
      s.failures = 0;
      switch_to(s, s.route.front());
    }
    if (!got) {
      if (!on_idle()) return Status::ok();
      continue;
    }
    bool stop_now = false;
    MQ_RETURN_IF_ERROR(handle(item.first, std::move(item.second), on_message, stop_now));
    if (stop_now) return Status::ok();
    // Nothing more is immediately available: let the output go out now.
    if (!more && !on_idle()) return Status::ok();
  }
}

}  // namespace mq::client

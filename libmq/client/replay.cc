#include "client/replay.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <thread>

#include "client/admin.h"
#include "protocol/group_messages.h"
#include "protocol/messages.h"
#include "util/parse.h"

namespace mq::client {

Result<ReplayBound> parse_replay_bound(std::string_view text, int64_t now) {
  ReplayBound b;
  if (text.empty()) return b;
  // The words mq-consume --from knows: the oldest stored, the end.
  if (text == "earliest" || text == "latest") {
    b.kind = ReplayBound::Kind::offset;
    b.offset = text == "earliest" ? 0 : UINT64_MAX;  // clamped to the queue's range
    return b;
  }
  if (auto n = parse_back_count(text)) {
    b.kind = ReplayBound::Kind::back;
    b.offset = *n;
    return b;
  }
  if (!looks_like_time(text)) {
    auto off = parse_uint(text, "offset");
    if (!off)
      return Status::invalid(fmt::format("invalid '{}': expected earliest, latest, an offset, -N or a time", text));
    b.kind = ReplayBound::Kind::offset;
    b.offset = *off;
    return b;
  }
  auto ms = parse_time(text, now);
  if (!ms) return ms.status();
  b.kind = ReplayBound::Kind::time;
  b.ms = *ms;
  return b;
}

namespace {

// The offset a bound stands for in one queue, clamped to [min, max].
Result<uint64_t> resolve_bound(Admin& admin, const std::string& topic, const protocol::QueueStat& q,
                               const ReplayBound& b, uint64_t dflt) {
  uint64_t off = dflt;
  switch (b.kind) {
    case ReplayBound::Kind::none: break;
    case ReplayBound::Kind::offset: off = b.offset; break;
    case ReplayBound::Kind::back: off = q.max_offset - std::min(b.offset, q.max_offset); break;
    case ReplayBound::Kind::time: {
      auto r = admin.offset_for_time(topic, q.queue, b.ms);
      if (!r) return r.status();
      off = *r;
      break;
    }
  }
  return std::clamp(off, q.min_offset, q.max_offset);
}

}  // namespace

Result<std::vector<ReplayQueue>> plan_replay(Cluster& cluster, const ReplayRange& range) {
  std::vector<ReplayQueue> out;
  size_t queues_seen = 0;  // the most queues a broker has of the topic
  for (size_t n : cluster.read_sources()) {
    auto& node = cluster.node(n);
    cluster.say_if_slave_read(n);
    Admin admin(node.channel, range.timeout);
    auto topics = admin.topics(range.topic);
    if (!topics) return reach_error(topics.status());
    for (auto& t : *topics) {
      if (t.topic != range.topic) continue;
      queues_seen = std::max(queues_seen, t.queues.size());
      for (auto& q : t.queues) {
        if (range.queue && q.queue != *range.queue) continue;
        auto begin = resolve_bound(admin, range.topic, q, range.from, q.min_offset);
        if (!begin) return reach_error(begin.status());
        if (range.from.kind == ReplayBound::Kind::offset && range.from.offset < q.min_offset)
          spdlog::warn("{}:{} on {}: offsets {} to {} were deleted (--retention): starting at {}", range.topic,
                       q.queue, node.address, range.from.offset, q.min_offset - 1, q.min_offset);
        auto end = resolve_bound(admin, range.topic, q, range.until, q.max_offset);
        if (!end) return reach_error(end.status());
        spdlog::debug("{} queue {} on {}: offsets {}..{} (stored {}..{})", range.topic, q.queue, node.address,
                      *begin, *end, q.min_offset, q.max_offset);
        out.push_back(ReplayQueue{n, q.queue, *begin, std::max(*begin, *end), cluster.master_address(n)});
      }
    }
  }
  if (range.queue && out.empty() && queues_seen > 0)
    return Status::not_found(
        fmt::format("topic {} has no queue {} (it has {}: 0 to {})", range.topic, *range.queue, queues_seen, queues_seen - 1));
  return out;
}

QueueCursor::QueueCursor(Cluster& cluster, const ReplayRange& range, ReplayQueue q)
    : cluster_(cluster), range_(range), q_(q), next_(q.begin) {
  for (auto& t : range_.tags) tag_hashes_.push_back(storage::tag_hash(t));
  done_ = next_ >= q_.end;
}

bool QueueCursor::accept(const storage::RecordView& rv) const {
  // Tag hashes may collide: the broker's filter is a hint, this is the check.
  if (!range_.tags.empty() && std::find(range_.tags.begin(), range_.tags.end(), rv.tag) == range_.tags.end())
    return false;
  if (range_.key && rv.key != *range_.key) return false;
  return true;
}

Status QueueCursor::fetch() {
  auto& node = cluster_.node(q_.node);
  protocol::PullRequest req;
  req.topic = range_.topic;
  req.queue = q_.queue;
  req.offset = next_;
  req.max_msgs = static_cast<uint32_t>(std::min<uint64_t>(range_.max_msgs, q_.end - next_));
  req.max_bytes = range_.max_bytes;
  req.wait_ms = 0;
  req.tag_hashes = tag_hashes_;
  std::string payload;
  req.encode(payload);
  auto what = [&] { return fmt::format("pull of {} queue {} from {}", range_.topic, q_.queue, node.address); };
  auto r = node.channel->call(protocol::Type::pull, std::move(payload), range_.timeout);
  if (!r) return reach_error(r.status());
  if (r->header.status != protocol::Code::ok)
    return protocol::status_from_response(r->header.status, r->payload).with_context(what());
  protocol::PullResponse resp;
  if (!resp.decode(r->payload)) return Status::corruption(what() + ": malformed answer");
  buf_ = std::move(resp.records);
  rest_ = buf_;
  if (resp.count == 0) {
    // Nothing (or only filtered records) there: move on, or stop at the end.
    if (resp.next_offset <= next_) {
      if (next_ < resp.min_offset) {
        next_ = resp.min_offset;  // retention removed the start meanwhile
      } else {
        done_ = true;
      }
    } else {
      next_ = resp.next_offset;
    }
    if (next_ >= q_.end) done_ = true;
  }
  return Status::ok();
}

Result<const storage::RecordView*> QueueCursor::peek() {
  if (have_) return &cur_;
  while (!done_) {
    if (rest_.empty()) {
      MQ_RETURN_IF_ERROR(fetch());
      continue;
    }
    std::string why;
    if (storage::decode_record(rest_, cur_, &why) != storage::DecodeResult::ok)
      return Status::corruption(fmt::format("corrupt record in {} queue {} from {} after offset {}: {}", range_.topic,
                                            q_.queue, cluster_.node(q_.node).address, next_, why));
    rest_.remove_prefix(cur_.bytes.size());
    if (cur_.offset < next_) continue;  // already seen
    if (cur_.offset >= q_.end) {
      done_ = true;
      break;
    }
    next_ = cur_.offset + 1;
    if (next_ >= q_.end) rest_ = {};
    if (!accept(cur_)) {
      if (next_ >= q_.end) done_ = true;
      continue;
    }
    have_ = true;
    if (next_ >= q_.end) done_ = true;  // this one is the last
    return &cur_;
  }
  return static_cast<const storage::RecordView*>(nullptr);
}

size_t pick_oldest(const std::vector<std::optional<int64_t>>& heads) {
  size_t best = heads.size();
  for (size_t i = 0; i < heads.size(); ++i)
    if (heads[i] && (best == heads.size() || *heads[i] < *heads[best])) best = i;
  return best;
}

Status read_replay(std::vector<QueueCursor>& cursors, bool merge,
                   const std::function<bool(const storage::RecordView&, std::string_view broker)>& on_message) {
  if (!merge) {
    for (auto& c : cursors) {
      for (;;) {
        auto m = c.peek();
        if (!m) return m.status();
        if (!*m) break;
        if (!on_message(**m, c.queue().broker)) return Status::ok();
        c.advance();
      }
    }
    return Status::ok();
  }
  // k-way merge: each cursor holds at most one pull answer.
  std::vector<std::optional<int64_t>> heads(cursors.size());
  std::vector<const storage::RecordView*> views(cursors.size());
  for (size_t i = 0; i < cursors.size(); ++i) {
    auto m = cursors[i].peek();
    if (!m) return m.status();
    views[i] = *m;
    if (*m) heads[i] = (*m)->store_ms;
  }
  for (;;) {
    size_t i = pick_oldest(heads);
    if (i == heads.size()) return Status::ok();
    if (!on_message(*views[i], cursors[i].queue().broker)) return Status::ok();
    cursors[i].advance();
    auto m = cursors[i].peek();
    if (!m) return m.status();
    views[i] = *m;
    heads[i] = *m ? std::optional<int64_t>((*m)->store_ms) : std::nullopt;
  }
}

RateLimiter::RateLimiter(double rate, double burst, Clock::time_point start)
    : rate_(rate), burst_(std::max(1.0, burst)), tokens_(std::max(1.0, burst)), last_(start) {}

RateLimiter::Clock::duration RateLimiter::try_take(Clock::time_point now) {
  if (rate_ <= 0) return Clock::duration::zero();
  if (now > last_) {
    tokens_ = std::min(burst_, tokens_ + std::chrono::duration<double>(now - last_).count() * rate_);
    last_ = now;
  }
  if (tokens_ >= 1.0) {
    tokens_ -= 1.0;
    return Clock::duration::zero();
  }
  // At most kMaxRateInterval, then the caller asks again: a wait of 1/rate for a
  // tiny rate does not fit in Clock::duration (the cast overflowed to a 1 ns
  // wait, a busy loop). The apps refuse rates below 1/kMaxRateInterval anyway.
  double secs = std::min((1.0 - tokens_) / rate_, std::chrono::duration<double>(kMaxRateInterval).count());
  auto wait = std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(secs));
  return std::max<Clock::duration>(wait, Clock::duration(1));
}

void RateLimiter::take() {
  for (;;) {
    auto d = try_take(Clock::now());
    if (d == Clock::duration::zero()) return;
    std::this_thread::sleep_for(d);
  }
}

storage::Message replay_message(const storage::RecordView& rv, int64_t now, bool redrive) {
  storage::Message m = rv.to_message();
  m.topic.clear();
  m.queue = 0;
  m.offset = 0;
  m.id = {};
  m.born_ms = 0;
  m.store_ms = 0;
  m.reconsume = 0;
  // The broker's properties (%ORIGIN_TOPIC, %DLQ_REASON, ...) are not a producer's to set:
  // the copy records where it came from in its own properties below.
  std::erase_if(m.props, [](const auto& p) { return !protocol::producer_may_set(p.first); });
  if (redrive) m.set_prop(protocol::kPropRedriven, "1");
  m.set_prop(kPropReplayOriginTopic, rv.topic);
  m.set_prop(kPropReplayOriginQueue, std::to_string(rv.queue));
  m.set_prop(kPropReplayOriginOffset, std::to_string(rv.offset));
  m.set_prop(kPropReplayOriginId, storage::id_to_hex(rv.id));
  m.set_prop(kPropReplayedAt, format_time(now));
  return m;
}

std::string redrive_group(std::string_view group) { return "redrive." + std::string(group); }

Result<std::vector<int64_t>> query_group_offsets(Cluster& cluster, size_t node, const std::string& group,
                                                 const std::string& topic, const std::vector<uint32_t>& queues,
                                                 Millis timeout) {
  protocol::QueryOffsetsRequest req;
  req.group = group;
  for (uint32_t q : queues) req.queues.push_back({topic, q});
  std::string payload;
  req.encode(payload);
  auto& n = cluster.node(node);
  auto r = n.channel->call(protocol::Type::query_offsets, std::move(payload), timeout);
  if (!r) return reach_error(r.status());
  if (r->header.status != protocol::Code::ok)
    return protocol::status_from_response(r->header.status, r->payload).with_context(n.address);
  protocol::QueryOffsetsResponse resp;
  if (!resp.decode(r->payload) || resp.entries.size() != queues.size())
    return Status::corruption(n.address + ": malformed query_offsets answer");
  std::vector<int64_t> out;
  for (auto& e : resp.entries) out.push_back(e.offset);
  return out;
}

}  // namespace mq::client

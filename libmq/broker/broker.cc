#include "broker/broker.h"

#include <spdlog/spdlog.h>

#include <thread>

#include "protocol/group_messages.h"
#include "protocol/messages.h"
#include "storage/record.h"
#include "util/bytes.h"
#include "util/parse.h"

namespace mq::broker {

namespace asio = boost::asio;
using protocol::Code;
using protocol::Frame;
using protocol::Type;

namespace {

constexpr size_t kPullHeadSize = 28;  // u64 next, u64 min, u64 max, u32 count

std::string pull_head(const storage::ReadResult& r) {
  std::string head;
  head.reserve(kPullHeadSize);
  ByteWriter w(head);
  w.u64(r.next_offset);
  w.u64(r.min_offset);
  w.u64(r.max_offset);
  w.u32(r.count);
  return head;
}

Code store_code(const Status& s) {
  return s.code() == mq::Code::disk_full ? Code::disk_full : protocol::code_from_status(s);
}

}  // namespace

Broker::Broker(asio::io_context& io, storage::MessageStore& store, TopicRegistry& topics,
               BrokerConfig config)
    : store_(store),
      topics_(topics),
      config_(std::move(config)),
      parking_(io, config_.max_parked_per_connection) {
  store_.set_visible_listener([this] {
    parking_.notify();
    for (auto& l : visible_listeners_) l();
  });
}

Broker::~Broker() { store_.set_visible_listener([] {}); }

void Broker::set_handler(Type type, RequestHandler handler) { extra_[type] = std::move(handler); }

void Broker::on_connection_closed(std::function<void(uint64_t)> listener) {
  close_listeners_.push_back(std::move(listener));
}

void Broker::set_advertised_address(std::string address) {
  std::lock_guard lock(mu_);
  config_.advertised_address = std::move(address);
}

void Broker::set_role(protocol::Role role, std::string master_addr) {
  std::lock_guard lock(mu_);
  role_ = role;
  master_addr_ = std::move(master_addr);
}

protocol::Role Broker::role() const {
  std::lock_guard lock(mu_);
  return role_;
}

void Broker::set_slaves_provider(std::function<std::vector<std::string>()> provider) {
  slaves_provider_ = std::move(provider);
}

void Broker::set_ack_gate(AckGate gate) { ack_gate_ = std::move(gate); }

void Broker::on_visible(std::function<void()> listener) {
  visible_listeners_.push_back(std::move(listener));
}

void Broker::set_auth(std::shared_ptr<const AuthConfig> config) {
  auth_ = std::make_unique<Authorizer>(std::move(config));
}

void Broker::connection_closed(uint64_t connection_id) {
  parking_.connection_closed(connection_id);
  auth_->connection_closed(connection_id);
  for (auto& l : close_listeners_) l(connection_id);
}

void Broker::handle(Frame f, net::Responder r) {
  if (f.header.type == Type::auth_challenge) return auth_->challenge(f, r);
  if (f.header.type == Type::auth) return auth_->authenticate(f, r);
  if (auth_->enabled()) {
    if (auto st = auth_->check(r.connection_id(), f); !st) {
      spdlog::debug("denied {} from {}: {}", static_cast<unsigned>(f.header.type), r.peer(), st.message());
      return r.fail(Code::denied, st.message());
    }
    // An allowed request beyond hello: this connection does not idle on a slot unauthenticated.
    if (f.header.type != Type::hello) r.admit();
  }
  switch (f.header.type) {
    case Type::hello: return hello(f, r);
    case Type::send: return send(f, r);
    case Type::pull: return pull(f, r);
    case Type::topic_info: return topic_info(f, r);
    case Type::offset_for_time: return offset_for_time(f, r);
    default: break;
  }
  auto it = extra_.find(f.header.type);
  if (it != extra_.end()) return it->second(f, r);
  // A type of the protocol that this broker does not serve (replication
  // requests on a slave, for one) is answered and the connection kept; a
  // number the protocol does not define is bad input.
  auto t = static_cast<unsigned>(f.header.type);
  if (t >= static_cast<unsigned>(Type::hello) && t <= static_cast<unsigned>(protocol::kLastType))
    return r.fail(Code::unknown_type, fmt::format("request type {} is not served by this broker ({})", t,
                                                  role() == protocol::Role::slave ? "a slave" : "a master"));
  r.refuse(Code::unknown_type, fmt::format("unknown request type {}", t));
}

Result<uint32_t> Broker::topic_queues(std::string_view topic, bool create) {
  if (auto q = topics_.queues(topic)) return *q;
  if (!create || !config_.auto_create)
    return Status::not_found(
        create ? fmt::format("topic {} does not exist and the broker runs with --no-auto-create", topic)
               : fmt::format("topic {} does not exist", topic));
  auto q = topics_.ensure(topic, config_.default_queues, config_.max_topics);
  if (q) spdlog::info("created topic {} with {} queues", topic, *q);
  return q;
}

void Broker::hello(const Frame& f, const net::Responder& r) {
  // Empty (no name given) or one str16 name, nothing after it.
  ByteReader in(f.payload);
  std::string client;
  if (!f.payload.empty() && (!in.str16(client) || !in.at_end()))
    return r.refuse(Code::bad_request, "hello request: malformed payload");
  if (!client.empty()) spdlog::debug("hello from {} ({})", r.peer(), client);
  protocol::HelloResponse h;
  h.version = config_.version;
  {
    std::lock_guard lock(mu_);
    h.role = role_;
    h.master_addr = master_addr_;
    h.broker_addr = config_.advertised_address;
  }
  if (slaves_provider_) h.slaves = slaves_provider_();
  h.max_message_size = config_.max_message_size;
  h.default_queues = config_.default_queues;
  std::string out;
  h.encode(out);
  r.reply(Code::ok, std::move(out));
}

void Broker::send(Frame& f, const net::Responder& r) {
  if (stopping_.load()) return r.fail(Code::busy, "broker is shutting down");
  {
    std::lock_guard lock(mu_);
    if (role_ == protocol::Role::slave)
      return r.fail(Code::not_master,
                    fmt::format("this broker is a slave of {}: send to a master", master_addr_));
  }
  ByteReader in(f.payload);
  uint32_t count = 0;
  if (!in.u32(count) || count == 0)
    return r.refuse(Code::bad_request, "send request: missing or zero record count");
  std::string_view rest = std::string_view(f.payload).substr(4);
  size_t pos = 0;
  uint32_t seen = 0;
  std::string_view allowed_topic;  // batches are mostly one topic: check each topic once
  while (pos < rest.size()) {
    storage::RecordView v;
    std::string why;
    auto res = storage::decode_record(rest.substr(pos), v, &why);
    if (res == storage::DecodeResult::need_more)
      return r.refuse(Code::bad_request, fmt::format("send request: record {} is truncated", seen));
    if (res == storage::DecodeResult::bad)
      // A record whose checksum does not match was damaged on the way: the producer
      // still holds it intact and may send it again (on a new connection: this one is
      // closed like any other bad input).
      return r.refuse(why == storage::kChecksumMismatch ? Code::corrupt_record : Code::bad_request,
                      fmt::format("send request: record {}: {}", seen, why));
    if (auto st = validate_topic(v.topic); !st) return r.fail(Code::bad_request, st.message());
    if (v.props.size() > protocol::kMaxPropsStored)
      return r.fail(Code::bad_request, fmt::format("message properties of {} bytes: at most {} bytes",
                                                   v.props.size(), protocol::kMaxPropsBytes));
    if (!v.props.empty())
      if (auto name = protocol::reserved_prop(v.props); !name.empty())
        return r.fail(Code::bad_request, fmt::format("property {} is reserved for the broker (names starting "
                                                     "with % are set by the broker only)", name));
    if (auth_->enabled() && v.topic != allowed_topic) {
      if (auto st = auth_->may_publish(r.connection_id(), v.topic); !st)
        return r.fail(Code::denied, st.message());
      allowed_topic = v.topic;
    }
    if (v.body.size() > config_.max_message_size)
      return r.fail(Code::message_too_large,
                    fmt::format("message of {} bytes exceeds the broker's maximum of {} bytes",
                                v.body.size(), config_.max_message_size));
    auto queues = topic_queues(v.topic, /*create=*/true);
    if (!queues) {
      Code code = store_code(queues.status());
      if (queues.status().code() == mq::Code::not_found) code = Code::topic_not_found;
      if (queues.status().code() == mq::Code::limit_reached) {
        code = Code::too_many_topics;
        // Once at warn (the operator should know), then at debug: producers may insist.
        if (!topic_limit_warned_.exchange(true)) spdlog::warn("{}", queues.status().message());
        else spdlog::debug("from {}: {}", r.peer(), queues.status().message());
      }
      return r.fail(code, queues.status().message());
    }
    if (v.queue >= *queues)
      return r.fail(Code::bad_request, fmt::format("queue {} out of range: topic {} has {} queues",
                                                   v.queue, v.topic, *queues));
    pos += v.bytes.size();
    ++seen;
  }
  if (seen != count)
    return r.refuse(Code::bad_request,
                  fmt::format("send request: count says {} records, payload holds {}", count, seen));
  std::string batch = std::move(f.payload);
  batch.erase(0, 4);  // the store takes the records alone
  appends_in_flight_.fetch_add(1);
  store_.append(std::move(batch), [this, r, count](Status st, std::vector<storage::Appended> placed) {
    // A timeout with offsets: written, but its fdatasync is late (--flush-timeout).
    bool late = st.code() == mq::Code::timeout && !placed.empty();
    if (!st && !late) {
      // The operator should hear of a full or failing disk, not only the producers:
      // once, then at most every minute (with how many were refused meanwhile).
      uint64_t n = append_failures_.fetch_add(1) + 1;
      if (append_failure_log_.due())
        spdlog::warn("sends refused: {} ({} so far)", st.message(), n);
      else
        spdlog::debug("append from {} failed: {}", r.peer(), st.message());
      r.fail(store_code(st), st.message());
    } else if (placed.size() != count) {
      r.fail(Code::internal, fmt::format("store placed {} of {} records", placed.size(), count));
    } else {
      protocol::SendResponse resp;
      resp.placed.reserve(placed.size());
      for (auto& a : placed) resp.placed.emplace_back(a.queue, a.offset);
      std::string out;
      resp.encode(out);
      if (late) {
        // Not durable here yet, so not replicated either: the disk's answer decides.
        warn_late(st);
        r.reply(Code::flush_disk_timeout, std::move(out));
      } else if (ack_gate_) {
        ack_gate_(store_.log_end(), [this, r, out = std::move(out)](Code c) mutable {
          r.reply(c, std::move(out));
          appends_in_flight_.fetch_sub(1);
        });
        return;
      } else {
        r.reply(Code::ok, std::move(out));
      }
    }
    appends_in_flight_.fetch_sub(1);
  }, /*checked=*/true);  // decode_record ran over every record above
}

void Broker::pull(const Frame& f, const net::Responder& r) {
  protocol::PullRequest req;
  if (!req.decode(f.payload)) return r.refuse(Code::bad_request, "pull request: malformed payload");
  if (auto st = validate_topic(req.topic, /*allow_reserved=*/true); !st)
    return r.fail(Code::bad_request, st.message());
  auto queues = topic_queues(req.topic, /*create=*/false);
  if (!queues) return r.fail(Code::topic_not_found, queues.status().message());
  if (req.queue >= *queues)
    return r.fail(Code::bad_request, fmt::format("queue {} out of range: topic {} has {} queues",
                                                 req.queue, req.topic, *queues));
  req.max_msgs = std::clamp<uint32_t>(req.max_msgs, 1, config_.max_pull_msgs);
  req.max_bytes = std::clamp<uint32_t>(req.max_bytes, 1, config_.max_pull_bytes);

  // No larger than the connection may still hold (at least one record): a peer that
  // pipelines pulls and never reads the answers holds about --max-pending, and many such
  // peers about --max-pending-total, not a whole pull answer each (16 MiB).
  auto read = [this, r](const protocol::PullRequest& q) {
    uint32_t max_bytes = static_cast<uint32_t>(std::clamp<size_t>(r.room(), 1, q.max_bytes));
    return store_.read(q.topic, q.queue, q.offset, q.max_msgs, max_bytes, q.tag_hashes);
  };
  auto answer = [this, r](Result<storage::ReadResult>& res) {
    if (!res) {
      // Damage in the log (a bad record): the operator must hear of it, not only the
      // reader. Once, then at most every minute.
      auto c = res.status().code();
      if ((c == mq::Code::corruption || c == mq::Code::io_error) && read_failure_log_.due())
        spdlog::error("read failed: {}", res.status().message());  // the message names queue and offset
      return r.fail(store_code(res.status()), res.status().message());
    }
    std::string head = pull_head(*res);
    r.reply(Code::ok, std::move(head), std::move(res->records));
  };
  auto first = read(req);
  if (!first || first->count > 0 || req.wait_ms == 0 || stopping_.load()) return answer(first);

  // Nothing there: park until records become visible or the wait ends. With a
  // tag filter, skipped records move the offset on while we wait.
  req.offset = first->next_offset;
  Millis wait = std::min<Millis>(Millis(req.wait_ms), config_.max_wait);
  auto state = std::make_shared<std::pair<protocol::PullRequest, storage::ReadResult>>(
      std::move(req), std::move(*first));
  bool parked = parking_.park(r.connection_id(), wait, [this, state, read, answer](bool final) {
    auto& [q, last] = *state;
    auto info = store_.queue_info(q.topic, q.queue);
    if (!final && info.max_offset <= q.offset) return false;
    auto res = read(q);
    if (res && res->count == 0 && !final) {
      q.offset = res->next_offset;
      last = std::move(*res);
      return false;
    }
    if (res && res->count == 0) res = std::move(last);  // keep the furthest offset
    answer(res);
    return true;
  });
  if (!parked) {
    Result<storage::ReadResult> res = std::move(state->second);
    answer(res);
  }
}

void Broker::topic_info(const Frame& f, const net::Responder& r) {
  ByteReader in(f.payload);
  std::string topic;
  if (!f.payload.empty() && (!in.str16(topic) || !in.at_end()))
    return r.refuse(Code::bad_request, "topic_info request: malformed payload");
  std::vector<std::pair<std::string, uint32_t>> list;
  if (topic.empty()) {
    list = topics_.list();
  } else {
    auto q = topic_queues(topic, /*create=*/false);
    if (!q) return r.fail(Code::topic_not_found, q.status().message());
    list.emplace_back(topic, *q);
  }
  protocol::TopicInfoResponse resp;
  resp.topics.reserve(list.size());
  for (auto& [name, nq] : list) {
    protocol::TopicStat t;
    t.topic = name;
    for (uint32_t q = 0; q < nq; ++q) {
      auto info = store_.queue_info(name, q);
      t.queues.push_back({q, info.min_offset, info.max_offset, info.newest_store_ms, info.bytes});
    }
    resp.topics.push_back(std::move(t));
  }
  std::string out;
  resp.encode(out);
  r.reply(Code::ok, std::move(out));
}

void Broker::offset_for_time(const Frame& f, const net::Responder& r) {
  protocol::OffsetForTimeRequest req;
  if (!req.decode(f.payload))
    return r.refuse(Code::bad_request, "offset_for_time request: malformed payload");
  auto queues = topic_queues(req.topic, /*create=*/false);
  if (!queues) return r.fail(Code::topic_not_found, queues.status().message());
  if (req.queue >= *queues)
    return r.fail(Code::bad_request, fmt::format("queue {} out of range: topic {} has {} queues",
                                                 req.queue, req.topic, *queues));
  auto off = store_.offset_for_time(req.topic, req.queue, req.ms);
  if (!off) return r.fail(store_code(off.status()), off.status().message());
  std::string out;
  ByteWriter(out).u64(*off);
  r.reply(Code::ok, std::move(out));
}

void Broker::warn_late(const Status& st) {
  // One line per stall, not per send: at most every 10 seconds.
  auto now = std::chrono::steady_clock::now().time_since_epoch().count();
  auto last = late_warned_.load(std::memory_order_relaxed);
  constexpr int64_t kEvery = std::chrono::steady_clock::duration(std::chrono::seconds(10)).count();
  if (last != 0 && now - last < kEvery) return;
  if (!late_warned_.compare_exchange_strong(last, now)) return;
  spdlog::warn("{}: sends answered FLUSH_DISK_TIMEOUT (stored, visible once the disk catches up)",
               st.message());
}

bool Broker::shutdown(Millis wait) {
  stopping_.store(true);
  parking_.shutdown();
  auto end = std::chrono::steady_clock::now() + wait;
  while (appends_in_flight_.load() > 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  return appends_in_flight_.load() == 0;
}

}  // namespace mq::broker

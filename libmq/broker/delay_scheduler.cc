#include "broker/delay_scheduler.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "storage/record.h"

namespace mq::broker {

Result<std::vector<Millis>> parse_delay_levels(std::string_view text) {
  std::vector<Millis> out;
  size_t i = 0;
  while (i < text.size()) {
    while (i < text.size() && (text[i] == ' ' || text[i] == ',' || text[i] == '\t')) ++i;
    size_t j = i;
    while (j < text.size() && text[j] != ' ' && text[j] != ',' && text[j] != '\t') ++j;
    if (j > i) {
      auto d = parse_duration(text.substr(i, j - i));
      if (!d) return Status::invalid(fmt::format("invalid --delay-levels: {}", d.status().message()));
      if (d->count() <= 0) return Status::invalid("invalid --delay-levels: a level must be longer than 0");
      out.push_back(*d);
    }
    i = j;
  }
  if (out.empty()) return Status::invalid("invalid --delay-levels: no level given");
  if (out.size() > 64) return Status::invalid("invalid --delay-levels: at most 64 levels");
  return out;
}

DelayScheduler::DelayScheduler(storage::MessageStore& store, OffsetTable& offsets, std::vector<Millis> levels,
                               std::function<Status(const std::string&, uint32_t)> ensure_topic)
    : store_(store),
      offsets_(offsets),
      levels_(std::move(levels)),
      ensure_topic_(std::move(ensure_topic)),
      busy_(nullptr) {
  // Queues of levels a longer --delay-levels made before this start: their messages
  // keep the due times they were sent back with and are moved when due, as any.
  size_t waiting = 0;
  queues_ = levels_.size();
  for (auto& [topic, queue] : store_.queues())
    if (topic == protocol::kScheduleTopic && queue >= levels_.size()) {
      auto qi = store_.queue_info(topic, queue);
      uint64_t done = static_cast<uint64_t>(std::max<int64_t>(
          offsets_.get(kScheduleGroup, {std::string(protocol::kScheduleTopic), queue}).offset, 0));
      if (qi.max_offset > std::max(done, qi.min_offset)) {
        waiting += qi.max_offset - std::max(done, qi.min_offset);
        queues_ = std::max<size_t>(queues_, queue + 1);
      }
    }
  if (waiting > 0)
    spdlog::warn("{} sent-back messages wait on delay levels {} to {}, past the {} levels of --delay-levels: "
                 "they are delivered again when due, as sent back",
                 waiting, levels_.size() + 1, queues_, levels_.size());
  busy_.reset(new std::atomic<bool>[queues_]);
  for (size_t i = 0; i < queues_; ++i) busy_[i] = false;
  (void)ensure_topic_(std::string(protocol::kScheduleTopic), static_cast<uint32_t>(levels_.size()));
}

void DelayScheduler::send_back(const protocol::SendBackRequest& req, int64_t now_ms,
                               std::function<void(Status)> done) {
  auto rec = storage::parse_record(req.record);
  if (!rec) return done(Status::invalid(fmt::format("send-back: {}", rec.status().message())));
  storage::Message m = rec->to_message();
  // A message delivered from a group's retry topic carries where it came from (set
  // here when it was first sent back); one from any other topic came from that topic,
  // whatever its properties say (records stored before producers were kept from
  // setting % properties may claim another).
  if (m.topic.empty() || m.topic[0] != '%' || !m.prop(protocol::kPropOriginTopic)) {
    m.set_prop(protocol::kPropOriginTopic, m.topic);
    m.set_prop(protocol::kPropOriginQueue, std::to_string(m.queue));
    m.set_prop(protocol::kPropOriginOffset, std::to_string(m.offset));
  }
  m.reconsume += 1;
  m.offset = 0;
  m.store_ms = 0;
  if (req.dead_letter_now || m.reconsume > req.max_retries) {
    m.topic = protocol::dlq_topic(req.group);
    m.queue = 0;
    m.set_prop(protocol::kPropDlqReason,
               req.reason.empty() ? (req.dead_letter_now ? "rejected" : "max retries exceeded") : req.reason);
    // Registered first, or the dead letter would sit in the log unseen by
    // consumers: refused (the member sends it back again later) while that fails.
    if (auto st = ensure_topic_(m.topic, 1); !st) return done(st.with_context("dead-letter topic"));
  } else {
    size_t level = std::min<size_t>(m.reconsume, levels_.size());
    m.set_prop(protocol::kPropRealTopic, protocol::retry_topic(req.group));
    m.set_prop(protocol::kPropDueMs, std::to_string(now_ms + levels_[level - 1].count()));
    m.topic = std::string(protocol::kScheduleTopic);
    m.queue = static_cast<uint32_t>(level - 1);
    (void)ensure_topic_(protocol::retry_topic(req.group), 1);
  }
  std::string batch;
  storage::encode_record(m, batch);
  store_.append(std::move(batch), [done = std::move(done)](Status s, std::vector<storage::Appended>) { done(s); });
}

void DelayScheduler::tick(int64_t now_ms) {
  for (size_t level = 0; level < queues_; ++level) {
    bool expected = false;
    if (!busy_[level].compare_exchange_strong(expected, true)) continue;
    protocol::QueueRef qref{std::string(protocol::kScheduleTopic), static_cast<uint32_t>(level)};
    auto cur = offsets_.get(kScheduleGroup, qref);
    uint64_t from = cur.offset < 0 ? 0 : static_cast<uint64_t>(cur.offset);
    auto read = store_.read(qref.topic, qref.queue, from, 256, 4u << 20);
    if (!read || read->count == 0) {
      if (!read) spdlog::warn("delay level {}: {}", level + 1, read.status().to_string());
      busy_[level] = false;
      continue;
    }
    std::string batch;
    std::vector<std::string> real_topics;  // the distinct topics of `batch`
    uint64_t next = std::max(from, read->min_offset);
    std::string_view rest = read->records;
    while (!rest.empty()) {
      storage::RecordView v;
      if (storage::decode_record(rest, v) != storage::DecodeResult::ok) break;
      std::string_view due_s, real;
      int64_t due = 0;
      if (v.prop(protocol::kPropDueMs, due_s)) due = std::atoll(std::string(due_s).c_str());
      if (due > now_ms) break;
      if (v.prop(protocol::kPropRealTopic, real)) {
        storage::Message m = v.to_message();
        m.topic.assign(real);
        m.queue = 0;
        if (std::find(real_topics.begin(), real_topics.end(), m.topic) == real_topics.end())
          real_topics.push_back(m.topic);
        m.erase_prop(protocol::kPropRealTopic);
        m.erase_prop(protocol::kPropDueMs);
        storage::encode_record(m, batch);
      }
      next = v.offset + 1;
      rest.remove_prefix(v.bytes.size());
    }
    if (next == from) {
      busy_[level] = false;
      continue;
    }
    auto advance = [this, level, qref, next, epoch = cur.epoch](Status s) {
      if (s) {
        offsets_.commit(kScheduleGroup, qref, static_cast<int64_t>(next), epoch, false);
      } else {
        // Retried every tick (100 ms) while it fails (a full disk): said once a minute.
        spdlog::log(redelivery_log_.due() ? spdlog::level::warn : spdlog::level::debug,
                    "delay level {}: redelivery failed, will retry: {}", level + 1, s.to_string());
      }
      busy_[level] = false;
    };
    if (batch.empty()) {
      advance(Status::ok());
      continue;
    }
    // The real topic is registered by send_back on the broker that took the
    // message back; this broker may be a promoted slave, which learns topics
    // only from the records it copies, and none of %RETRY%<group> may have
    // reached it. Registered first: consumers find the topic once its records
    // are there, and a restart does not adopt it with the default queue count.
    Status known;
    for (auto& t : real_topics)
      if (known = ensure_topic_(t, 1); !known) break;
    if (!known) {
      advance(known);
      continue;
    }
    store_.append(std::move(batch), [advance](Status s, std::vector<storage::Appended>) { advance(s); });
  }
}

}  // namespace mq::broker

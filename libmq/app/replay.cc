#include "app/replay.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>

#include <functional>
#include <map>
#include <set>
#include <memory>
#include <thread>

#include "cli/connect.h"
#include "cli/input_reader.h"
#include "cli/message_format.h"
#include "cli/output_writer.h"
#include "cli/progress.h"
#include "cli/signals.h"
#include "client/admin.h"
#include "client/cluster.h"
#include "client/producer.h"
#include "client/replay.h"
#include "client/topic_info.h"
#include "client/tail.h"
#include "protocol/group_messages.h"
#include "util/file.h"

namespace mq::app {

namespace {

constexpr uint32_t kDefaultMaxMessage = 4u << 20;
// How long a --rate pause sleeps before it looks at the stop flag again.
constexpr auto kPauseSlice = std::chrono::milliseconds(50);

// Publishes to any number of topics (one async producer each, created on
// first use) at most `rate` messages a second, writing receipts as mq-send.
class Publisher {
 public:
  Publisher(client::Cluster& cluster, const ReplayOptions& opt, cli::OutputWriter& out)
      : cluster_(cluster), opt_(opt), out_(out), limiter_(opt.rate) {}

  // A line not published (malformed): its FAILED receipt, in line order, as mq-send's.
  void reject(const std::string& topic, uint64_t line) {
    if (auto* p = producer(topic)) p->reject(line, ready_);
    emit();
  }

  // A message larger than the brokers of `topic` take: its FAILED receipt and a failure
  // named by `what` (true), not sent, since the broker refuses a send request whole and
  // the messages batched with it would fail too. As mq-send checks each line.
  bool too_large(const std::string& topic, size_t size, uint64_t line, const std::string& what) {
    auto made = open(topic);
    if (!made) return false;  // publish() counts that failure, once
    client::Producer* p = *made;
    size_t max = p->max_message_size() ? p->max_message_size() : kDefaultMaxMessage;
    if (size <= max) return false;
    fail(fmt::format("{}: message of {} bytes is larger than the limit of {} bytes", what, size, max));
    p->reject(line, ready_);
    emit();
    return true;
  }

  // line: the number receipts carry. A producer that cannot be created counts as a failure.
  // False, without publishing, once the run is to stop: SIGINT/SIGTERM (also
  // during a --rate pause) or the receipts' reader went away (see stopping()).
  bool publish(const std::string& topic, storage::Message msg, uint64_t line) {
    using Clock = client::RateLimiter::Clock;
    bool flushed = false;
    for (;;) {
      if (stopping()) return false;
      auto wait = limiter_.try_take(Clock::now());
      if (wait == Clock::duration::zero()) break;
      // Waiting for a token: send what is batched meanwhile, report acks as
      // they come, and look at the stop flag at least every kPauseSlice (a
      // signal may be handled by another thread, so no sleep is interrupted).
      if (!flushed) {
        for (auto& [t, p] : producers_) p->flush();
        flushed = true;
      }
      for (auto& [t, p] : producers_) p->poll(ready_);
      emit();
      if (stopping(/*idle=*/true)) return false;
      std::this_thread::sleep_for(std::min<Clock::duration>(wait, kPauseSlice));
    }
    auto* p = producer(topic);
    if (!p) return true;
    // When it is published, after any --rate pause (the copy was made before it).
    if (opt_.rate > 0) msg.set_prop(client::kPropReplayedAt, format_time(now_ms()));
    p->submit(line, std::move(msg), ready_);
    emit();
    if (progress_.due()) {
      uint64_t submitted = 0, acked = 0;
      for (auto& [t, q] : producers_) {
        auto st = q->stats();
        submitted += st.submitted;
        acked += st.acked;
      }
      progress_.draw(fmt::format("mq-replay: {} published, {} acked, {:.0f}/s", cli::with_commas(submitted),
                                 cli::with_commas(acked), progress_.rate(submitted)));
    }
    return true;
  }

  // SIGINT/SIGTERM arrived, or --receipts cannot be written any more: a closed
  // stdout is a normal end (SPEC), a write error fails the run (see finish()),
  // and in both cases publishing more would only publish messages unreported.
  // idle: nothing was written for a while (a --rate pause), so ask the pipe.
  bool stopping(bool idle = false) {
    if (cli::stop_requested()) return true;
    return opt_.receipts && (!out_.ok() || (idle && out_.reader_gone()));
  }

  // Waits for every ack. ok when each message got SEND_OK.
  Status finish() {
    for (auto& [t, p] : producers_) p->finish(ready_);
    emit();
    progress_.clear();
    uint64_t submitted = 0, acked = 0, failed = failed_;
    std::string first = first_error_;
    for (auto& [t, p] : producers_) {
      auto st = p->stats();
      submitted += st.submitted;
      acked += st.acked;
      failed += st.failed;
      if (first.empty()) first = st.first_error;
    }
    if (opt_.common.verbose > 0 || (cli::is_tty(STDERR_FILENO) && !opt_.common.quiet))
      spdlog::info("published {}, acked {}, failed {}", submitted + failed_, acked, failed);
    if (failed > 0)
      return Status::unavailable(fmt::format("{} of {} messages failed: {}", failed, submitted + failed_, first));
    if (opt_.receipts) return out_.error();  // a closed stdout is not one
    return Status::ok();
  }

  // Counts a message that could not even be submitted.
  // Each reason is logged once (no master reachable would otherwise be a line per message).
  void fail(const std::string& why) {
    if (logged_.insert(why).second) spdlog::error("{}", why);
    if (failed_++ == 0) first_error_ = why;
  }

  uint32_t max_message_size() {
    uint32_t m = 0;
    for (auto& [t, p] : producers_)
      if (p->max_message_size() && (m == 0 || p->max_message_size() < m)) m = p->max_message_size();
    return m ? m : kDefaultMaxMessage;
  }

  // The producer of `topic`, made on first use.
  Result<client::Producer*> open(const std::string& topic) {
    auto it = producers_.find(topic);
    if (it != producers_.end()) return it->second.get();
    if (Status v = validate_topic(topic); !v) return v;
    client::ProducerOptions po;
    po.mode = client::SendMode::async;
    po.window = opt_.window;
    po.timeout = opt_.timeout;
    auto p = client::Producer::create(cluster_, topic, po);
    if (!p) return p.status().with_context(topic);
    return producers_.emplace(topic, std::move(*p)).first->second.get();
  }

  // As open(), a failure counted as a message that failed.
  client::Producer* producer(const std::string& topic) {
    auto p = open(topic);
    if (p) return *p;
    fail(p.status().message());
    return nullptr;
  }

 private:
  void emit() {
    if (opt_.receipts && out_.ok()) {
      for (auto& r : ready_) client::append_receipt_line(r, out_.buffer());
      out_.commit();
      out_.flush();
    }
    ready_.clear();
  }

  client::Cluster& cluster_;
  const ReplayOptions& opt_;
  cli::OutputWriter& out_;
  client::RateLimiter limiter_;
  std::map<std::string, std::unique_ptr<client::Producer>> producers_;
  std::vector<client::Receipt> ready_;
  uint64_t failed_ = 0;
  std::string first_error_;
  std::set<std::string> logged_;
  cli::Progress progress_{!opt_.common.quiet};
};

// What stdout gets: --format, else a dry run's plan as JSON, else the bodies.
std::string output_format(const ReplayOptions& opt) {
  return !opt.format.empty() ? opt.format : (opt.dry_run ? "json" : "body");
}

Status check_modes(const ReplayOptions& opt) {
  int modes = int(!opt.topic.empty()) + int(!opt.dlq.empty()) + int(!opt.input.empty());
  if (modes != 1) return Status::invalid("give exactly one of -t TOPIC, --dlq GROUP and -i FILE");
  bool range = !opt.from.empty() || !opt.until.empty() || opt.queue || opt.key || !opt.tag.empty() || opt.merge;
  if (opt.topic.empty() && range)
    return Status::invalid("--from, --until, --queue, --key, --tag and --merge need -t TOPIC");
  if (opt.dlq.empty() && (opt.dry_run || opt.force)) return Status::invalid("--dry-run and --force need --dlq GROUP");
  if (!opt.input.empty() && opt.to_topic.empty()) return Status::invalid("-i FILE needs --to-topic DEST");
  bool publishing = !opt.to_topic.empty() || (!opt.dlq.empty() && !opt.dry_run);
  if (!publishing && (opt.receipts || opt.rate > 0 || opt.window_given))
    return Status::invalid("--receipts, --rate and --window apply only when publishing (--to-topic, --dlq)");
  if (publishing && (!opt.format.empty() || opt.nul))
    return Status::invalid("--format and -0 apply only when writing messages to standard output");
  if (opt.nul && output_format(opt) != "body")
    return Status::invalid("-0 applies to --format body: end a template with \\0 instead");
  if (opt.rate < 0) return Status::invalid("--rate must not be negative");
  // 1/rate seconds between messages: more than a day is surely a mistake (1e-300 would be
  // centuries; a wait that long does not even fit in a clock's duration).
  if (opt.rate > 0 && opt.rate * std::chrono::duration<double>(client::kMaxRateInterval).count() < 1.0)
    return Status::invalid(fmt::format("invalid --rate {:g}: less than one message a day (0 means no limit)", opt.rate));
  if (opt.window == 0) return Status::invalid("--window must be at least 1");
  if (!opt.to_topic.empty())
    if (Status v = validate_topic(opt.to_topic); !v) return v;
  if (!opt.topic.empty())
    if (Status v = validate_topic(opt.topic, true); !v) return v;
  if (!opt.dlq.empty())
    if (Status v = validate_group(opt.dlq); !v) return v;
  // Bad bounds are usage errors before any broker is asked (parsed again for the range).
  int64_t now = now_ms();
  auto from = client::parse_replay_bound(opt.from, now);
  if (!from) return Status::invalid(fmt::format("--from: {}", from.status().message()));
  auto until = client::parse_replay_bound(opt.until, now);
  if (!until) return Status::invalid(fmt::format("--until: {}", until.status().message()));
  // Bounds of one kind the wrong way round select nothing: said rather than an empty exit 0.
  using K = client::ReplayBound::Kind;
  if (from->kind == until->kind &&
      ((from->kind == K::offset && from->offset > until->offset) || (from->kind == K::time && from->ms > until->ms) ||
       (from->kind == K::back && from->offset < until->offset)))
    return Status::invalid(fmt::format("--from {} is after --until {}: nothing lies between", opt.from, opt.until));
  return Status::ok();
}

// Where a stored message is published: a topic, or "" when it cannot be
// (the function said why through Publisher::fail).
using Destination = std::function<std::string(const storage::RecordView&, Publisher&)>;

// The end of every mode that reads the store: each message of the cursors is
// written to stdout in `format` (no `dest`), or published to dest's topic as
// replay_message(redrive) makes it, with receipts and --rate. Stops early on
// SIGINT/SIGTERM or a closed stdout (when publishing, *stopped is set then: the
// cursors stand on the first message not published); ok when every message was
// written or got SEND_OK.
Status replay_cursors(const ReplayOptions& opt, client::Cluster& cluster, cli::OutputWriter& out,
                      const cli::MessageFormat& format, std::vector<client::QueueCursor>& cursors, bool merge,
                      const Destination& dest, bool redrive, bool* stopped = nullptr) {
  auto interrupted = [&] {
    if (!cli::stop_requested()) return false;
    if (stopped) *stopped = true;
    return true;
  };
  if (!dest) {
    Status s = client::read_replay(cursors, merge, [&](const storage::RecordView& rv, std::string_view broker) {
      if (interrupted()) return false;
      format.append(rv, broker, out.buffer());
      return out.commit();
    });
    out.flush();
    if (!s) return s;
    return out.error();
  }
  Publisher pub(cluster, opt, out);
  uint64_t line = 0;
  Status s = client::read_replay(cursors, merge, [&](const storage::RecordView& rv, std::string_view) {
    if (interrupted()) return false;
    ++line;
    std::string topic = dest(rv, pub);
    if (topic.empty()) return true;
    if (pub.too_large(topic, rv.body.size(), line,
                      fmt::format("{}:{} offset {}", rv.topic, rv.queue, rv.offset)))
      return true;
    if (pub.publish(topic, client::replay_message(rv, now_ms(), redrive), line)) return true;
    // Not published (a signal, or the receipts' reader left): the cursor stays on it.
    if (stopped) *stopped = true;
    return false;
  });
  Status f = pub.finish();
  out.flush();
  if (!s) return s;
  return f;
}

// `missing`: listed brokers whose data nothing reachable stands for (client::missing_brokers):
// what they hold is not read, the caller fails after the rest.
Status replay_topic(const ReplayOptions& opt, client::Cluster& cluster, cli::OutputWriter& out,
                    const cli::MessageFormat& format, bool missing) {
  client::ReplayRange range;
  range.topic = opt.topic;
  range.queue = opt.queue;
  range.key = opt.key;
  range.timeout = opt.timeout;
  if (!opt.tag.empty() && opt.tag != "*") {
    auto tags = client::split_tags(opt.tag);
    if (!tags) return tags.status();
    range.tags = std::move(*tags);
  }
  int64_t now = now_ms();
  auto from = client::parse_replay_bound(opt.from, now);
  if (!from) return Status::invalid(fmt::format("--from: {}", from.status().message()));
  auto until = client::parse_replay_bound(opt.until, now);
  if (!until) return Status::invalid(fmt::format("--until: {}", until.status().message()));
  range.from = *from;
  range.until = *until;
  auto plan = client::plan_replay(cluster, range);
  if (!plan) return plan.status();
  if (plan->empty() && !missing) client::say_topic_missing(opt.topic, true);  // as mq-consume -e: exit 0
  std::vector<client::QueueCursor> cursors;
  cursors.reserve(plan->size());
  for (auto& q : *plan) cursors.emplace_back(cluster, range, q);

  Destination dest;
  if (!opt.to_topic.empty()) dest = [&](const storage::RecordView&, Publisher&) { return opt.to_topic; };
  return replay_cursors(opt, cluster, out, format, cursors, opt.merge, dest, /*redrive=*/false);
}

Status replay_dlq(const ReplayOptions& opt, client::Cluster& cluster, cli::OutputWriter& out,
                  const cli::MessageFormat& format, bool missing) {
  client::ReplayRange range;
  range.topic = protocol::dlq_topic(opt.dlq);
  range.timeout = opt.timeout;
  auto plan = client::plan_replay(cluster, range);
  if (!plan) return plan.status();
  if (plan->empty() && !missing) spdlog::info("group {}: no dead letters", opt.dlq);
  const std::string book = client::redrive_group(opt.dlq);
  // Where the previous re-drives stopped, per queue (-1 = never).
  std::vector<int64_t> done(plan->size(), -1);
  for (size_t i = 0; i < plan->size(); ++i) {
    auto r = client::query_group_offsets(cluster, (*plan)[i].node, book, range.topic, {(*plan)[i].queue}, opt.timeout);
    if (!r) return r.status();
    done[i] = (*r)[0];
  }
  std::vector<client::QueueCursor> cursors;
  cursors.reserve(plan->size());
  uint64_t skipped = 0, left = 0;
  for (size_t i = 0; i < plan->size(); ++i) {
    auto q = (*plan)[i];
    uint64_t begin = q.begin;
    if (!opt.force && done[i] >= 0) q.begin = std::clamp<uint64_t>(static_cast<uint64_t>(done[i]), q.begin, q.end);
    skipped += q.begin - begin;
    left += q.end - q.begin;
    cursors.emplace_back(cluster, range, q);
  }
  // Said, so that a run with nothing to do is not a silent exit 0.
  if (skipped > 0)
    spdlog::info("group {}: {} dead letter{} re-driven already, {} (--force re-drives every one again)", opt.dlq,
                 skipped, skipped == 1 ? "" : "s", left == 0 ? "nothing new" : fmt::format("{} new", left));
  if (opt.dry_run) return replay_cursors(opt, cluster, out, format, cursors, false, nullptr, /*redrive=*/true);
  // The progress is saved after publishing: make sure now that it may be (a user allowed to
  // publish but not to keep the progress would publish every dead letter again each run).
  for (size_t i = 0; i < cursors.size(); ++i) {
    protocol::ResetRequest req;
    req.group = book;
    req.dry_run = true;
    req.entries.push_back({{range.topic, cursors[i].queue().queue}, done[i], std::max<int64_t>(done[i], 0)});
    client::Admin admin(cluster.node(cursors[i].queue().node).channel, opt.timeout);
    if (auto r = admin.reset(req); !r)
      return client::reach_error(r.status().with_context(fmt::format("cannot keep the re-drive's progress (group {})", book)));
  }
  // To DEST, else to the topic each dead letter came from.
  auto dest = [&](const storage::RecordView& rv, Publisher& pub) {
    std::string topic = opt.to_topic;
    std::string_view origin;
    if (topic.empty() && rv.prop(protocol::kPropOriginTopic, origin)) topic = origin;
    if (topic.empty())
      pub.fail(fmt::format("dead letter {} (queue {} offset {}) has no {} property: give --to-topic",
                           storage::id_to_hex(rv.id), rv.queue, rv.offset, protocol::kPropOriginTopic));
    return topic;
  };
  bool stopped = false;
  if (Status s = replay_cursors(opt, cluster, out, format, cursors, false, dest, /*redrive=*/true, &stopped); !s)
    return s;  // nothing remembered: the next run re-drives them again
  // Remember how far each queue was re-driven (compare-and-set against what
  // we read, so two concurrent re-drives do not both move it).
  for (size_t i = 0; i < cursors.size(); ++i) {
    if (stopped && cursors[i].position() == (*plan)[i].begin) continue;
    auto target = static_cast<int64_t>(cursors[i].position());
    if (done[i] >= target) continue;
    protocol::ResetRequest req;
    req.group = book;
    req.entries.push_back({{range.topic, cursors[i].queue().queue}, done[i], target});
    client::Admin admin(cluster.node(cursors[i].queue().node).channel, opt.timeout);
    auto r = admin.reset(req);
    if (!r) return client::reach_error(r.status());
    if (!(*r)[0].applied)
      spdlog::warn("queue {} of {}: another re-drive moved on meanwhile (now at {})", cursors[i].queue().queue,
                   range.topic, (*r)[0].old_offset);
  }
  return Status::ok();
}

Status replay_file(const ReplayOptions& opt, client::Cluster& cluster, cli::OutputWriter& out, cli::Stdio io) {
  int fd = io.in;
  UniqueFd owned;
  if (opt.input != "-") {
    int f = ::open(opt.input.c_str(), O_RDONLY | O_CLOEXEC);
    // As jq: an input file that cannot be opened is a usage error (2), like the other files given.
    if (f < 0) return Status::invalid(Status::from_errno(opt.input, errno).message());
    owned = UniqueFd{f};
    fd = f;
  }
  Publisher pub(cluster, opt, out);
  // One destination: if it cannot be published to, that is the error (no message was tried).
  if (auto p = pub.open(opt.to_topic); !p) return p.status();
  std::string name = opt.input == "-" ? "stdin" : opt.input;
  cli::InputReader reader(fd, cli::InputMode::json, pub.max_message_size(),
                          opt.input == "-" ? "standard input" : opt.input);
  cli::InputItem item;
  uint64_t bad = 0;
  std::string first_bad;
  while (!cli::stop_requested() && reader.next(item)) {
    if (!item.error.is_ok()) {
      std::string why = fmt::format("{}: {}", name, item.error.message());  // it starts with "line N: "
      spdlog::error("{}", why);
      if (bad++ == 0) first_bad = why;
      pub.reject(opt.to_topic, item.line);
      continue;
    }
    if (pub.too_large(opt.to_topic, item.body.size(), item.line, fmt::format("{}: line {}", name, item.line)))
      continue;
    storage::Message m;
    m.body = std::move(item.body);
    if (item.key) m.key = std::move(*item.key);
    if (item.tag) m.tag = std::move(*item.tag);
    if (item.props) m.props = std::move(*item.props);
    // The broker's own properties (a dump of a retry or dead-letter topic has them) are not
    // a producer's to set; where the message came from is recorded below.
    std::erase_if(m.props, [](const auto& p) { return !protocol::producer_may_set(p.first); });
    // Provenance, as far as the record tells it (a record of --format json has all of it).
    auto& o = item.origin;
    if (o.topic) m.set_prop(client::kPropReplayOriginTopic, *o.topic);
    if (o.queue) m.set_prop(client::kPropReplayOriginQueue, std::to_string(*o.queue));
    if (o.offset) m.set_prop(client::kPropReplayOriginOffset, std::to_string(*o.offset));
    if (o.id) m.set_prop(client::kPropReplayOriginId, *o.id);
    m.set_prop(client::kPropReplayedAt, format_time(now_ms()));
    if (!pub.publish(opt.to_topic, std::move(m), item.line)) break;  // a signal, or the receipts' reader left
  }
  Status f = pub.finish();
  out.flush();
  if (!reader.status().is_ok()) return reader.status();  // "cannot read FILE: ..."
  if (!f) return f;
  // As mq-send: the work (some lines) failed, exit 1; the other lines were published.
  if (bad > 0) return Status::corruption(fmt::format("{} malformed {} not published (first: {})", bad, bad == 1 ? "line" : "lines", first_bad));
  return Status::ok();
}

}  // namespace

Status replay(const ReplayOptions& opt, cli::Stdio io) {
  cli::setup_logger("mq-replay", opt.common);
  using cli::fail;
  if (Status m = check_modes(opt); !m) return fail(m);
  auto format = cli::MessageFormat::parse(output_format(opt), opt.nul);
  if (!format) return fail(format.status());

  cli::install_stop_signals();
  auto cluster = cli::connect_cluster(opt.common, "mq-replay", opt.timeout);
  if (!cluster) return fail(cluster.status());
  // A listed broker that did not answer and that no answering broker stands for (as its
  // slave, or as its master) may be a master that is down with no slave up: its queues
  // cannot be read. Reading to stdout prints the rest, then fails naming it; publishing
  // is refused before anything is sent (run again, it would publish the rest twice).
  // -i FILE reads no broker: its sends go to the masters that answer, as mq-send's.
  std::vector<size_t> missing;
  if (opt.input.empty()) missing = client::missing_brokers(**cluster, opt.timeout);
  bool publishing = !opt.to_topic.empty() || (!opt.dlq.empty() && !opt.dry_run);
  if (publishing && !missing.empty())
    return fail(client::unaccounted_error(**cluster, missing, "queues would not be replayed (nothing published)"));
  cli::OutputWriter out(io.out);
  Status s;
  if (!opt.topic.empty()) s = replay_topic(opt, **cluster, out, *format, !missing.empty());
  else if (!opt.dlq.empty()) s = replay_dlq(opt, **cluster, out, *format, !missing.empty());
  else s = replay_file(opt, **cluster, out, io);
  // "topic t has no queue 9" may only be true of what answered. A reader that went away
  // (| head) or a stop signal ended the work before the rest mattered.
  if (!missing.empty() && (s || s.code() == Code::not_found) && !out.closed() && !cli::stop_requested())
    s = client::unaccounted_error(**cluster, missing, "queues are not replayed");
  if (!s) return fail(s);
  return s;
}

}  // namespace mq::app

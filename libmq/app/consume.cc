#include "app/consume.h"

#include <spdlog/spdlog.h>

#include "cli/connect.h"
#include "cli/message_format.h"
#include "cli/output_writer.h"
#include "cli/signals.h"
#include "client/cluster.h"
#include "client/exec.h"
#include "client/group_consumer.h"
#include "client/tail.h"

namespace mq::app {

namespace {

Status parse_from(std::string_view from, client::TailOptions& t) {
  if (from.empty() || from == "latest") {
    t.from = client::FromKind::latest;
  } else if (from == "earliest") {
    t.from = client::FromKind::earliest;
  } else if (auto n = parse_back_count(from)) {
    t.from = client::FromKind::back;
    t.from_offset = *n;
  } else if (looks_like_time(from)) {
    auto ms = parse_time(from, now_ms());
    if (!ms) return Status::invalid(fmt::format("--from: {}", ms.status().message()));
    t.from = client::FromKind::time;
    t.from_ms = *ms;
  } else {
    auto off = parse_uint(from, "--from");
    if (!off)
      return Status::invalid(
          fmt::format("invalid --from '{}': expected earliest, latest, an offset, -N or a time", from));
    t.from = client::FromKind::offset;
    t.from_offset = *off;
  }
  return Status::ok();
}

}  // namespace

Status consume(const ConsumeOptions& opt, cli::Stdio io) {
  cli::setup_logger("mq-consume", opt.common);
  using cli::fail;
  if (!opt.exec.empty() && opt.group.empty())
    return fail(Status::invalid("--exec needs a consumer group (-g GROUP): the tail commits nothing"));
  if (!opt.group.empty())
    if (Status g = validate_group(opt.group); !g) return fail(g);
  bool grouped = !opt.group.empty();
  if (!grouped && (opt.orderly || opt.concurrency != 1))
    return fail(Status::invalid(fmt::format("{} needs a consumer group (-g GROUP): a tail runs no commands",
                                            opt.orderly ? "--orderly" : "--concurrency")));
  if (!grouped && !opt.group_option_given.empty())
    return fail(Status::invalid(
        fmt::format("{} needs a consumer group (-g GROUP): a tail has no retries, span or commits", opt.group_option_given)));
  if (!opt.exec.empty() && (opt.format_given || opt.nul))
    return fail(Status::invalid(fmt::format("{} does not apply to --exec: the command gets the body on its stdin",
                                            opt.format_given ? "--format" : "-0")));
  if (opt.nul && opt.format != "body")
    return fail(Status::invalid("-0 applies to --format body: end a template with \\0 instead"));
  if (Status t = validate_topic(opt.topic, true); !t) return fail(t);
  client::TailOptions to;
  to.topic = opt.topic;
  to.to_end = opt.to_end;
  to.timeout = opt.timeout;
  if (Status s = parse_from(opt.from, to); !s) return fail(s);
  if (!opt.tag.empty() && opt.tag != "*") {
    auto tags = client::split_tags(opt.tag);
    if (!tags) return fail(tags.status());
    to.tags = std::move(*tags);
  }
  auto format = cli::MessageFormat::parse(opt.format, opt.nul);
  if (!format) return fail(format.status());

  // Before any thread (it forks): commands of a consumer that dies do not run on.
  if (!opt.exec.empty())
    if (Status r = client::start_command_reaper(); !r) return fail(r.with_context("--exec"));
  cli::install_stop_signals();
  cli::on_second_signal(client::kill_running_commands);  // a second signal leaves no command behind
  auto cluster = cli::connect_cluster(opt.common, "mq-consume", to.timeout);
  if (!cluster) return fail(cluster.status());

  cli::OutputWriter out(io.out);
  // Writes go to a thread of their own: a slow reader must not stop heartbeats or signals.
  if (opt.exec.empty()) out.start_background();
  uint64_t written = 0;
  if (grouped) {
    if (Status t = validate_topic(opt.topic, false); !t) return fail(t);
    client::GroupOptions go;
    go.group = opt.group;
    go.topic = opt.topic;
    go.from = to.from;
    go.from_offset = to.from_offset;
    go.from_ms = to.from_ms;
    go.count = opt.count;
    go.to_end = opt.to_end;
    go.tags = to.tags;
    go.exec = opt.exec;
    go.concurrency = opt.concurrency;
    go.orderly = opt.orderly;
    go.max_span = opt.max_span;
    go.consume_timeout = opt.consume_timeout;
    go.max_retries = static_cast<uint32_t>(opt.max_retries);
    go.commit_interval = opt.commit_interval;
    go.stop_grace = opt.stop_grace;
    go.request_timeout = opt.timeout;
    client::GroupConsumer gc(**cluster, go);
    Status st = gc.run(
        [&](const storage::RecordView& m, std::string_view broker) -> std::optional<uint64_t> {
          format->append(m, broker, out.buffer());
          if (!out.commit()) return std::nullopt;
          return out.position();
        },
        // Idle: give the reader a moment, so that what it takes is settled (and the span
        // freed) now rather than at the next event; a stalled reader costs 20 ms a turn.
        // A reader that went away (| head) ends the run, as it does a tail's.
        [&] { return out.bytes_written(); }, [&] { return out.flush_wait(Millis(20)) && !out.reader_gone(); },
        cli::stop_flag());
    // After a stop signal the reader had the stop's grace already (run() waited for it,
    // and what it did not take is not committed).
    out.finish(&cli::stop_flag(), Millis(0));
    auto s = gc.stats();
    spdlog::debug("consumed {}, failed attempts {}, dead-lettered {}, commits {}", s.consumed, s.failed,
                  s.dead_lettered, s.commits);
    if (!st) return fail(st);
    if (!out.error().is_ok()) return fail(out.error());
    return Status::ok();
  }
  client::Tail tail(**cluster, to);
  Status st = tail.run(
      [&](const storage::RecordView& m, std::string_view broker) {
        format->append(m, broker, out.buffer());
        if (!out.commit()) return false;
        ++written;
        if (out.backlogged()) out.wait_room(cli::stop_flag());  // the reader is slower than the broker
        return (opt.count == 0 || written < opt.count) && !cli::stop_requested();
      },
      [&] { return out.flush_wait(Millis(20)) && !out.reader_gone(); }, cli::stop_flag());
  out.finish(&cli::stop_flag());
  if (!st) return fail(st);
  if (!out.error().is_ok()) return fail(out.error());
  spdlog::debug("{} messages written", written);
  return Status::ok();
}

}  // namespace mq::app

#include "app/offset.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <set>
#include <tuple>

#include "cli/connect.h"
#include "cli/output_writer.h"
#include "cli/signals.h"
#include "cli/table.h"
#include "client/admin.h"
#include "client/cluster.h"
#include "protocol/group_messages.h"
#include "util/file.h"
#include "util/parse.h"

namespace mq::app {

namespace {

using client::Admin;
using protocol::QueueRef;

struct Ctx {
  const OffsetOptions& opt;
  cli::Stdio io;
  cli::TableFormat format;
  std::unique_ptr<client::Cluster> cluster;
  // (address, admin) per master-slave pair: the reachable master, else (read-only
  // commands) a slave of it, named by its master's address: the rows are the pair's and
  // an export stays importable into the master.
  std::vector<std::pair<std::string, Admin>> admins;
  net::ChannelOptions channel;  // timeout and security for new connections
  bool closed = false;          // the reader of stdout went away: a normal end
};

// Picks what c.admins reads from. Masters always; for a pair whose master is down, its
// slave when `read_only` (it holds the log and the replicated offsets, said on stderr),
// else fails naming the master: changes must go to it.
Status pick_admins(Ctx& c, bool read_only) {
  auto& cl = *c.cluster;
  for (size_t i : cl.read_sources()) {
    auto& n = cl.node(i);
    if (n.hello.role == protocol::Role::master) {
      c.admins.emplace_back(n.address, Admin(n.channel, c.opt.timeout));
      continue;
    }
    const std::string& master = n.hello.master_addr;
    if (!read_only)
      return Status::unavailable(
          master.empty() ? fmt::format("the master of slave {} is unreachable: {} needs it", n.address, c.opt.command)
                         : fmt::format("master {} is unreachable: {} needs it (its slave {} is read-only)", master,
                                       c.opt.command, n.address));
    cl.say_if_slave_read(i);
    c.admins.emplace_back(cl.master_address(i), Admin(n.channel, c.opt.timeout));
  }
  if (c.admins.empty()) return Status::unavailable("no master broker reachable");
  return Status::ok();
}

Status emit(Ctx& c, const cli::Table& t) {
  cli::OutputWriter out(c.io.out);
  out.write(t.render(c.format, c.io.out));
  out.flush();
  c.closed = c.closed || out.closed();
  return out.error();
}

// A number, or nothing to show for a negative one (no offset).
cli::Cell num(int64_t v) { return v < 0 ? cli::Cell{} : std::to_string(v); }

Status topics_cmd(Ctx& c) {
  cli::Table t({"topic", {"queue", true}, "broker", {"min", true}, {"max", true}, {"messages", true},
                {"bytes", true}, "newest", "slave", "slave_state", {"slave_lag_bytes", true},
                {"slave_lag_ms", true}});
  for (auto& [addr, admin] : c.admins) {
    auto ts = admin.topics(c.opt.topic);
    if (!ts) return ts.status();
    auto repl = admin.replication();
    if (!repl) return repl.status();
    // The master's replication lag, on each of its queue rows; one row per slave.
    std::vector<std::array<cli::Cell, 4>> slaves;
    if (*repl)
      for (auto& s : (*repl)->slaves)
        slaves.push_back({s.addr, s.connected ? "connected" : "disconnected", std::to_string(s.lag_bytes),
                          std::to_string(s.lag_ms)});
    if (slaves.empty()) slaves.emplace_back();
    for (auto& topic : *ts) {
      // The broker's own store of delayed retries, one queue per delay level: shown only
      // when asked for by name (-t %SCHEDULE%); its messages reach groups via %RETRY%.
      if (c.opt.topic.empty() && topic.topic == protocol::kScheduleTopic) continue;
      for (auto& q : topic.queues)
        for (auto& sl : slaves)
          t.add({topic.topic, std::to_string(q.queue), addr, std::to_string(q.min_offset),
                 std::to_string(q.max_offset), std::to_string(q.max_offset - q.min_offset), std::to_string(q.bytes),
                 q.newest_store_ms ? cli::Cell(format_time(q.newest_store_ms)) : std::nullopt, sl[0], sl[1], sl[2],
                 sl[3]});
    }
  }
  if (!c.opt.topic.empty() && t.size() == 0) return Status::not_found(fmt::format("topic {} does not exist", c.opt.topic));
  return emit(c, t);
}

// Max offset of every queue of the given topics on one broker.
std::map<QueueRef, protocol::QueueStat> queue_stats(Admin& a) {
  std::map<QueueRef, protocol::QueueStat> out;
  auto ts = a.topics("");
  if (!ts) return out;
  for (auto& t : *ts)
    for (auto& q : t.queues) out[{t.topic, q.queue}] = q;
  return out;
}

// A group's rows in show: every queue it has an offset on, and its %RETRY% and
// %DLQ% queues; the lag of a dead-letter queue is what it holds (nothing commits
// there), and so is that of a retry queue with no offset yet (a member starts it at
// its beginning). groups adds up these lags.
struct GroupRow {
  int64_t committed = -1;
  int64_t lag = -1;  // -1: no offset
};
std::map<QueueRef, GroupRow> group_rows(const protocol::GroupInfo& g,
                                        const std::map<QueueRef, protocol::QueueStat>& stats) {
  std::map<QueueRef, GroupRow> rows;
  for (auto& e : g.offsets) rows[e.q].committed = e.offset;
  for (auto& [q, s] : stats)
    if (q.topic == protocol::retry_topic(g.group) || q.topic == protocol::dlq_topic(g.group)) rows[q];
  for (auto& [q, r] : rows) {
    auto it = stats.find(q);
    auto st = it != stats.end() ? it->second : protocol::QueueStat{};
    bool from_start = q.topic == protocol::dlq_topic(g.group) ||
                      (r.committed < 0 && q.topic == protocol::retry_topic(g.group));
    r.lag = from_start ? static_cast<int64_t>(st.max_offset - st.min_offset)
                       : queue_lag(r.committed, st.min_offset, st.max_offset);
  }
  return rows;
}

// show or export found nothing: the topic asked for does not exist, or the group
// has no offsets (on it).
Status no_offsets(Ctx& c) {
  if (!c.opt.topic.empty()) {
    bool exists = false;
    for (auto& [addr, admin] : c.admins)
      for (auto& [q, st] : queue_stats(admin)) exists = exists || q.topic == c.opt.topic;
    if (!exists) return Status::not_found(fmt::format("topic {} does not exist", c.opt.topic));
    return Status::not_found(fmt::format("group {} has no offsets for topic {}", c.opt.group, c.opt.topic));
  }
  return Status::not_found(fmt::format("group {} has no offsets", c.opt.group));
}

Status show_cmd(Ctx& c) {
  cli::Table t({"topic", {"queue", true}, "broker", {"committed", true}, {"max", true}, {"lag", true}, "member",
                {"blocker", true}, "age", {"reconsume", true}, {"waiting", true}});
  bool found = false;
  for (auto& [addr, admin] : c.admins) {
    auto gs = admin.groups(c.opt.group);
    if (!gs) return gs.status();
    auto stats = queue_stats(admin);
    for (auto& g : *gs) {
      std::map<QueueRef, std::string> owner;
      for (auto& m : g.members)
        for (auto& q : m.owned) owner[q] = fmt::format("{}", m.client_id);
      std::map<QueueRef, protocol::QueueProgress> prog;
      for (auto& p : g.progress) prog[p.q] = p;
      auto rows = group_rows(g, stats);
      for (auto& [q, r] : rows) {
        if (!c.opt.topic.empty() && q.topic != c.opt.topic && q.topic.rfind('%', 0) != 0) continue;
        found = true;
        auto st = stats.count(q) ? stats[q] : protocol::QueueStat{};
        bool dlq = q.topic == protocol::dlq_topic(g.group);
        int64_t cm = r.committed, lag = r.lag;
        std::vector<cli::Cell> row{q.topic,     std::to_string(q.queue), addr, dlq ? std::nullopt : num(cm),
                                   std::to_string(st.max_offset), num(lag),
                                   owner.count(q) ? cli::Cell(owner[q]) : std::nullopt};
        auto p = prog.find(q);
        // A report older than the saved commit (the member's heartbeat came before it) names
        // a blocker the commit is past already: not shown.
        if (p != prog.end() && p->second.lowest_in_flight >= 0 && (cm < 0 || p->second.lowest_in_flight >= cm)) {
          row.push_back(std::to_string(p->second.lowest_in_flight));
          row.push_back(format_duration(Millis(static_cast<int64_t>(p->second.in_flight_age_ms))));
          row.push_back(std::to_string(p->second.reconsume));
          row.push_back(std::to_string(p->second.finished_behind));
        } else {
          row.resize(row.size() + 4);
        }
        t.add(std::move(row));
      }
    }
  }
  if (!found) return no_offsets(c);
  return emit(c, t);
}

Status groups_cmd(Ctx& c) {
  struct Agg {
    std::set<std::string> members, topics;
    int64_t lag = 0;
  };
  std::map<std::string, Agg> agg;
  for (auto& [addr, admin] : c.admins) {
    auto gs = admin.groups("");
    if (!gs) return gs.status();
    auto stats = queue_stats(admin);
    for (auto& g : *gs) {
      auto& a = agg[g.group];
      for (auto& m : g.members) a.members.insert(fmt::format("{}(pid {})", m.host, m.pid));
      for (auto& e : g.offsets)
        if (e.q.topic.rfind('%', 0) != 0) a.topics.insert(e.q.topic);
      for (auto& [q, r] : group_rows(g, stats)) a.lag += std::max<int64_t>(r.lag, 0);
    }
  }
  cli::Table t({"group", {"members", true}, "topics", {"lag", true}, "hosts"});
  for (auto& [name, a] : agg) {
    std::string topics, hosts;
    for (auto& x : a.topics) topics += (topics.empty() ? "" : ",") + x;
    for (auto& x : a.members) hosts += (hosts.empty() ? "" : ",") + x;
    t.add({name, std::to_string(a.members.size()), topics.empty() ? std::nullopt : cli::Cell(topics),
           std::to_string(a.lag), hosts.empty() ? std::nullopt : cli::Cell(hosts)});
  }
  return emit(c, t);
}

fs::path undo_dir(const OffsetOptions& opt) {
  if (!opt.undo_dir.empty()) return opt.undo_dir;
  const char* st = std::getenv("XDG_STATE_HOME");
  if (st && *st) return fs::path(st) / "mq" / "undo";
  const char* home = std::getenv("HOME");
  return fs::path(home && *home ? home : "/tmp") / ".local" / "state" / "mq" / "undo";
}

std::string undo_line(const std::string& group, const std::string& broker, const protocol::ResetEntry& e) {
  return fmt::format("{}\t{}\t{}\t{}\t{}\n", group, e.q.topic, broker, e.q.queue, e.expected);
}

struct ResetTarget {
  std::optional<int64_t> to_time;
  std::optional<uint64_t> to_offset;
};

// The reset's mode and value, checked before any broker is asked (a typo is a usage error).
Result<ResetTarget> reset_target(const OffsetOptions& o) {
  int modes = (!o.to.empty()) + (!o.to_time.empty()) + (o.shift.has_value());
  if (modes != 1) return Status::invalid("reset needs exactly one of --to, --to-time, --shift");
  ResetTarget r;
  if (!o.to_time.empty()) {
    auto t = parse_time(o.to_time, now_ms());
    if (!t) return t.status().with_context("--to-time");
    r.to_time = *t;
  }
  if (!o.to.empty() && o.to != "earliest" && o.to != "latest") {
    auto n = parse_uint(o.to, "--to");
    if (!n) return Status::invalid(fmt::format("invalid --to '{}': expected earliest, latest or an offset", o.to));
    r.to_offset = *n;
  }
  return r;
}

Status reset_cmd(Ctx& c) {
  const auto& o = c.opt;
  auto target_of = reset_target(o);
  if (!target_of) return target_of.status();
  auto [to_time, to_offset] = *target_of;
  // Plan every broker first: nothing is changed unless the whole plan could be made.
  struct Plan {
    Admin* admin;
    std::string addr;
    protocol::ResetRequest req;
  };
  std::vector<Plan> plans;
  bool topic_seen = false;
  for (auto& [addr, admin] : c.admins) {
    auto ts = admin.topics(o.topic);
    if (!ts) return ts.status();
    auto gs = admin.groups(o.group);
    if (!gs) return gs.status();
    std::map<QueueRef, int64_t> cur;
    for (auto& g : *gs)
      for (auto& e : g.offsets) cur[e.q] = e.offset;
    Plan plan{&admin, addr, {}};
    plan.req.group = o.group;
    plan.req.dry_run = o.dry_run;
    for (auto& t : *ts) {
      if (t.topic != o.topic) continue;
      topic_seen = true;
      for (auto& q : t.queues) {
        if (o.queue && q.queue != *o.queue) continue;
        QueueRef ref{t.topic, q.queue};
        int64_t old = cur.count(ref) ? cur[ref] : -1;
        int64_t target;
        if (o.to == "earliest") {
          target = static_cast<int64_t>(q.min_offset);
        } else if (o.to == "latest") {
          target = static_cast<int64_t>(q.max_offset);
        } else if (to_offset) {
          target = static_cast<int64_t>(std::min<uint64_t>(*to_offset, INT64_MAX));
        } else if (to_time) {
          auto off = admin.offset_for_time(t.topic, q.queue, *to_time);
          if (!off) return off.status();
          target = static_cast<int64_t>(*off);
        } else {
          if (old < 0)
            return Status::not_found(fmt::format(
                "--shift: group {} has no offset for {}:{} yet (use --to or --to-time)", o.group, t.topic, q.queue));
          target = shift_offset(old, *o.shift, static_cast<int64_t>(q.min_offset),
                                static_cast<int64_t>(q.max_offset));
        }
        // The broker clamps again at apply time (the range may have moved since).
        target = std::clamp<int64_t>(target, static_cast<int64_t>(q.min_offset), static_cast<int64_t>(q.max_offset));
        plan.req.entries.push_back({ref, old, target});
      }
    }
    if (!plan.req.entries.empty()) plans.push_back(std::move(plan));
  }
  if (plans.empty()) {
    if (topic_seen) return Status::not_found(fmt::format("topic {} has no queue {}", o.topic, *o.queue));
    return Status::not_found(fmt::format("topic {} does not exist", o.topic));
  }
  // The undo file is written before anything changes (a reset we could not undo is not
  // applied), then rewritten with only the queues that were actually reset.
  fs::path undo_path;
  if (!o.dry_run) {
    std::string undo;
    for (auto& p : plans)
      for (auto& e : p.req.entries)
        if (e.expected >= 0) undo += undo_line(o.group, p.addr, e);
    auto dir = undo_dir(o);
    std::error_code ec;
    fs::create_directories(dir, ec);
    if (ec) return Status::io_error(fmt::format("cannot create the undo directory {}: {}", dir.string(), ec.message()));
    auto claimed = claim_undo_file(dir, o.group, now_ms());
    if (!claimed) return claimed.status().with_context("cannot write the undo file");
    undo_path = std::move(*claimed);
    if (auto w = write_file_atomic(undo_path, undo); !w) return w.with_context("cannot write the undo file");
  }
  cli::Table out({"topic", {"queue", true}, "broker", {"old", true}, {"new", true}, "result"});
  std::string undo;
  size_t applied = 0, conflicts = 0, answered = 0;
  Status failed;
  for (auto& p : plans) {
    auto res = p.admin->reset(p.req);
    if (res) ++answered;
    if (!res) {
      failed = res.status();  // report what was applied on the other brokers, then fail
      for (auto& e : p.req.entries)
        out.add({e.q.topic, std::to_string(e.q.queue), p.addr, num(e.expected), num(e.new_offset), "not reset: " + res.status().message()});
      continue;
    }
    for (size_t i = 0; i < p.req.entries.size(); ++i) {
      auto& e = p.req.entries[i];
      auto& r = (*res)[i];
      std::string result;
      if (!r.applied) {
        ++conflicts;
        result = fmt::format("conflict: changed to {} meanwhile, not reset",
                             r.new_offset < 0 ? "no offset" : std::to_string(r.new_offset));
      } else if (o.dry_run) {
        result = "dry-run";
      } else {
        ++applied;
        result = "reset";
        if (e.expected >= 0) undo += undo_line(o.group, p.addr, e);
      }
      out.add({e.q.topic, std::to_string(e.q.queue), p.addr, num(r.applied ? r.old_offset : e.expected),
               num(r.new_offset), result});
    }
  }
  // Refused everywhere (denied, say): the one error line says it all, not a row per queue.
  auto st = answered > 0 ? emit(c, out) : Status::ok();
  if (!o.dry_run) {
    if (undo.empty()) {
      std::error_code ec;
      fs::remove(undo_path, ec);
      if (applied > 0)
        spdlog::info("no undo file: group {} had no committed offset on these queues (nothing to restore)", o.group);
    } else {
      if (auto w = write_file_atomic(undo_path, undo); !w) return w.with_context("cannot write the undo file");
      spdlog::info("undo file: {} (restore with: mq-offset import < {})", undo_path.string(), undo_path.string());
    }
  }
  if (!st) return st;
  if (!failed) return failed;
  if (conflicts > 0)
    return Status::unavailable(
        fmt::format("{} queue(s) changed while resetting and were not reset (run the reset again)", conflicts));
  return Status::ok();
}

// The import format (headerless TSV) unless --format table or json asks for
// something else: on a terminal too, so that what a person sees can be saved
// and imported as it is.
Status export_cmd(Ctx& c) {
  cli::Table t({"group", "topic", "broker", {"queue", true}, {"offset", true}});
  std::string tsv;
  for (auto& [addr, admin] : c.admins) {
    auto gs = admin.groups(c.opt.group);
    if (!gs) return gs.status();
    for (auto& g : *gs)
      for (auto& e : g.offsets) {
        if (e.offset < 0) continue;
        if (!c.opt.topic.empty() && e.q.topic != c.opt.topic) continue;
        t.add({g.group, e.q.topic, addr, std::to_string(e.q.queue), std::to_string(e.offset)});
        tsv += fmt::format("{}\t{}\t{}\t{}\t{}\n", g.group, e.q.topic, addr, e.q.queue, e.offset);
      }
  }
  if (t.size() == 0) return no_offsets(c);
  if (c.format == cli::TableFormat::table || c.format == cli::TableFormat::json) return emit(c, t);
  cli::OutputWriter out(c.io.out);
  out.write(tsv);
  out.flush();
  c.closed = out.closed();
  return out.error();
}

}  // namespace

void parse_offset_tsv(std::string_view input, std::vector<OffsetLine>& lines,
                      std::vector<std::string>& errors) {
  size_t lineno = 0, pos = 0;
  std::map<std::tuple<std::string, std::string, std::string, uint32_t>, size_t> seen;  // -> index in lines
  while (pos < input.size()) {
    size_t nl = input.find('\n', pos);
    std::string_view l(input.data() + pos, (nl == std::string::npos ? input.size() : nl) - pos);
    pos = nl == std::string::npos ? input.size() : nl + 1;
    ++lineno;
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.empty() || l[0] == '#') continue;
    std::vector<std::string> f;
    size_t s = 0;
    for (;;) {
      size_t tab = l.find('\t', s);
      f.emplace_back(l.substr(s, tab == std::string_view::npos ? std::string_view::npos : tab - s));
      if (tab == std::string_view::npos) break;
      s = tab + 1;
    }
    if (f.size() != 5) {
      errors.push_back(fmt::format("line {}: expected 5 tab-separated fields (GROUP TOPIC BROKER QUEUE OFFSET), got {}", lineno, f.size()));
      continue;
    }
    OffsetLine ln;
    ln.group = f[0];
    ln.topic = f[1];
    ln.broker = f[2];
    if (auto st = validate_group(ln.group); !st) { errors.push_back(fmt::format("line {}: {}", lineno, st.message())); continue; }
    if (auto st = validate_topic(ln.topic, true); !st) { errors.push_back(fmt::format("line {}: {}", lineno, st.message())); continue; }
    if (auto hp = cli::split_brokers(ln.broker); !hp || hp->size() != 1) { errors.push_back(fmt::format("line {}: invalid broker '{}'", lineno, ln.broker)); continue; }
    auto q = parse_uint(f[3], "queue");
    auto o = parse_uint(f[4], "offset");
    if (!q || *q > 65535) { errors.push_back(fmt::format("line {}: invalid queue '{}'", lineno, f[3])); continue; }
    if (!o || *o > static_cast<uint64_t>(INT64_MAX)) {
      errors.push_back(fmt::format("line {}: invalid offset '{}'", lineno, f[4]));
      continue;
    }
    ln.queue = static_cast<uint32_t>(*q);
    ln.offset = static_cast<int64_t>(*o);
    ln.line = lineno;
    // One offset per queue: a repeated line is dropped, two different offsets are an
    // error (which one was meant? applied in turn, the last would win in silence).
    auto [it, fresh] = seen.try_emplace(std::tuple{ln.group, ln.broker, ln.topic, ln.queue}, lines.size());
    if (!fresh) {
      const OffsetLine& first = lines[it->second];
      if (first.offset != ln.offset)
        errors.push_back(fmt::format("line {}: offset {} for group {} topic {} queue {} on {}, but line {} gives {}",
                                     lineno, ln.offset, ln.group, ln.topic, ln.queue, ln.broker, first.line,
                                     first.offset));
      continue;
    }
    lines.push_back(std::move(ln));
  }
}

int64_t queue_lag(int64_t committed, uint64_t min, uint64_t max) {
  if (committed < 0) return -1;
  int64_t from = std::max(committed, static_cast<int64_t>(min));
  return std::max<int64_t>(0, static_cast<int64_t>(max) - from);
}

int64_t shift_offset(int64_t offset, int64_t shift, int64_t min, int64_t max) {
  int64_t sum;
  if (__builtin_add_overflow(offset, shift, &sum)) sum = shift > 0 ? INT64_MAX : INT64_MIN;
  return std::clamp(sum, min, max);
}

Result<fs::path> claim_undo_file(const fs::path& dir, const std::string& group, int64_t ms) {
  for (int n = 1;; ++n) {
    fs::path p = dir / (n == 1 ? fmt::format("reset-{}-{}.tsv", group, ms)
                               : fmt::format("reset-{}-{}-{}.tsv", group, ms, n));
    UniqueFd fd(::open(p.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
    if (fd) return p;
    if (errno != EEXIST || n >= 1000) return Status::from_errno(p.string(), errno);
  }
}

namespace {

Status import_cmd(Ctx& c) {
  std::string input;
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(c.io.in, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::from_errno("read stdin", errno);
    }
    if (n == 0) break;
    input.append(buf, static_cast<size_t>(n));
  }
  // Validate every line before applying anything.
  std::vector<OffsetLine> lines;
  std::vector<std::string> errors;
  parse_offset_tsv(input, lines, errors);
  if (!errors.empty()) {
    for (size_t i = 0; i + 1 < errors.size(); ++i) spdlog::error("{}", errors[i]);
    return Status::invalid(fmt::format("{} (nothing imported)", errors.back()));
  }
  if (lines.empty()) return Status::invalid("no offsets on stdin (nothing imported)");
  // One reset request per (broker, group).
  std::map<std::pair<std::string, std::string>, protocol::ResetRequest> reqs;
  for (auto& l : lines) {
    auto& r = reqs[{l.broker, l.group}];
    r.group = l.group;
    r.entries.push_back({{l.topic, l.queue}, -1, l.offset});
  }
  net::IoThread io;
  std::map<std::string, Admin> admins;
  for (auto& [key, req] : reqs)
    if (!admins.count(key.first))
      admins.emplace(key.first, Admin(net::Channel::create(io.io(), key.first, c.channel), c.opt.timeout));
  // Every broker must answer before anything is set: an unreachable one fails the import whole.
  for (auto& [key, req] : reqs)
    if (auto g = admins.at(key.first).groups(req.group); !g)
      return client::reach_error(g.status()).with_context("nothing imported");
  // Every line must name a queue its broker has: a broker keeps the offset of any
  // queue it is given, so a mistyped topic or queue would stay in show and export.
  std::map<std::string, std::map<std::string, uint32_t>> queues;  // broker -> topic -> count
  for (auto& [addr, admin] : admins) {
    auto ts = admin.topics();
    if (!ts) return client::reach_error(ts.status()).with_context("nothing imported");
    for (auto& t : *ts) queues[addr][t.topic] = static_cast<uint32_t>(t.queues.size());
  }
  for (auto& l : lines) {
    auto& known = queues[l.broker];
    auto it = known.find(l.topic);
    if (it == known.end())
      errors.push_back(fmt::format("line {}: topic {} does not exist on {}", l.line, l.topic, l.broker));
    else if (l.queue >= it->second)
      errors.push_back(fmt::format("line {}: topic {} has no queue {} on {} (it has {})", l.line, l.topic,
                                   l.queue, l.broker, it->second));
  }
  if (!errors.empty()) {
    for (size_t i = 0; i + 1 < errors.size(); ++i) spdlog::error("{}", errors[i]);
    return Status::not_found(fmt::format("{} (nothing imported)", errors.back()));
  }
  cli::Table t({"group", "topic", "broker", {"queue", true}, {"old", true}, {"new", true}});
  for (auto& [key, req] : reqs) {
    auto res = admins.at(key.first).reset(req);
    if (!res) {
      (void)emit(c, t);  // what was set on the brokers before this one
      return res.status();
    }
    for (size_t i = 0; i < req.entries.size(); ++i)
      t.add({req.group, req.entries[i].q.topic, key.first, std::to_string(req.entries[i].q.queue),
             num((*res)[i].old_offset), num((*res)[i].new_offset)});
  }
  return emit(c, t);
}

}  // namespace

Status offset(const OffsetOptions& opt, cli::Stdio io) {
  cli::setup_logger("mq-offset", opt.common);
  // A reader that goes away (| head) is a normal end: EPIPE, not death by SIGPIPE.
  cli::ignore_sigpipe();
  using cli::fail;
  auto format = cli::parse_table_format(opt.format);
  if (!format) return fail(format.status());
  if (!opt.group.empty())
    if (auto st = validate_group(opt.group); !st) return fail(st);
  if (!opt.topic.empty())
    if (auto st = validate_topic(opt.topic, true); !st) return fail(st);
  if (opt.command == "reset")
    if (auto t = reset_target(opt); !t) return fail(t.status());
  Ctx c{opt, io, *format, nullptr, {}, {}};
  if (opt.command == "import") {
    auto channel = cli::channel_options(opt.common, "mq-offset", opt.timeout);
    if (!channel) return fail(channel.status());
    c.channel = std::move(*channel);
    auto st = import_cmd(c);
    return st ? st : fail(st);
  }
  auto cluster = cli::connect_cluster(opt.common, "mq-offset", opt.timeout);
  if (!cluster) return fail(cluster.status());
  c.cluster = std::move(*cluster);
  if (auto st = pick_admins(c, opt.command != "reset"); !st) return fail(st);
  // A listed broker that did not answer and that no answering broker stands for (as its
  // slave, or as its master) may be a master that is down with no slave up: its queues
  // are missing from every answer. A reset is refused before anything changes; the other
  // commands print what the others hold, then fail naming it.
  auto missing = client::missing_brokers(*c.cluster, opt.timeout);
  if (opt.command == "reset" && !missing.empty())
    return fail(client::unaccounted_error(*c.cluster, missing, "queues would not be reset (nothing reset)"));
  Status st;
  if (opt.command == "topics") st = topics_cmd(c);
  else if (opt.command == "show") st = show_cmd(c);
  else if (opt.command == "groups") st = groups_cmd(c);
  else if (opt.command == "reset") st = reset_cmd(c);
  else if (opt.command == "export") st = export_cmd(c);
  else st = Status::invalid(fmt::format("unknown command '{}'", opt.command));
  // "topic t does not exist" or "group g has no offsets" may only be true of what answered.
  // A reader that went away (| head) did not want the rest.
  if (!missing.empty() && (st || st.code() == Code::not_found) && !c.closed) {
    const char* lost = opt.command == "export"   ? "offsets are not exported"
                       : opt.command == "groups" ? "groups and lag are not counted"
                                                 : "queues are not shown";
    st = client::unaccounted_error(*c.cluster, missing, lost);
  }
  return st ? st : fail(st);
}

}  // namespace mq::app

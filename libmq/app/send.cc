#include "app/send.h"

#include <spdlog/spdlog.h>
#include <fcntl.h>

#include <chrono>
#include <thread>

#include "cli/connect.h"
#include "cli/input_reader.h"
#include "cli/output_writer.h"
#include "cli/progress.h"
#include "cli/signals.h"
#include "client/cluster.h"
#include "client/producer.h"
#include "protocol/frame.h"
#include "protocol/group_messages.h"

namespace mq::app {

namespace {

constexpr uint32_t kDefaultMaxMessage = 4u << 20;

struct Defaults {
  std::string key, tag;
  storage::Properties props;
};

// What the record format and the consumers' tag filters can carry ("" when fine):
// key, tag and property names have 16-bit lengths; a --tag filter splits at "||",
// trims spaces and takes "*" for every tag, so such a tag could never be selected.
std::string field_problem(std::string_view key, std::string_view tag, const storage::Properties& props) {
  constexpr size_t kMax16 = 65535;
  if (key.size() > kMax16) return fmt::format("key of {} bytes is longer than {} bytes", key.size(), kMax16);
  if (tag.size() > kMax16) return fmt::format("tag of {} bytes is longer than {} bytes", tag.size(), kMax16);
  if (tag == "*" || tag.find("||") != std::string_view::npos)
    return fmt::format("tag '{}': '*' and '||' are --tag filter syntax", tag);
  if (!tag.empty() && (tag.front() == ' ' || tag.back() == ' '))
    return fmt::format("tag '{}' begins or ends with a space", tag);
  // "a|" in a filter "a|||b" would split as "a" and "|b".
  if (!tag.empty() && (tag.front() == '|' || tag.back() == '|'))
    return fmt::format("tag '{}' begins or ends with '|' (a --tag filter joins tags with '||')", tag);
  size_t encoded = 0;  // as the record holds them (mq-data(5))
  for (auto& [k, v] : props) {
    if (k.size() > kMax16)
      return fmt::format("property name of {} bytes is longer than {} bytes", k.size(), kMax16);
    encoded += 6 + k.size() + v.size();
  }
  if (encoded > protocol::kMaxPropsBytes)
    return fmt::format("properties of {} bytes (encoded) are more than {} bytes together", encoded,
                       protocol::kMaxPropsBytes);
  return "";
}

Result<storage::Properties> parse_props(const std::vector<std::string>& list) {
  storage::Properties out;
  for (auto& p : list) {
    auto eq = p.find('=');
    if (eq == std::string::npos || eq == 0)
      return Status::invalid(fmt::format("invalid property '{}': expected NAME=VALUE", p));
    std::string name = p.substr(0, eq);
    if (!protocol::producer_may_set(name))
      return Status::invalid(fmt::format("invalid property '{}': names starting with % are the broker's", name));
    for (auto& [k, v] : out)
      if (k == name) return Status::invalid(fmt::format("property '{}' given twice (-p {}=...)", name, name));
    out.emplace_back(std::move(name), p.substr(eq + 1));
  }
  return out;
}

storage::Message make_message(const Defaults& d, cli::InputItem&& item) {
  storage::Message m;
  m.body = std::move(item.body);
  m.key = item.key ? std::move(*item.key) : d.key;
  m.tag = item.tag ? std::move(*item.tag) : d.tag;
  m.props = d.props;
  if (item.props)
    for (auto& [k, v] : *item.props) m.set_prop(k, v);
  return m;
}

}  // namespace

Status send(const SendOptions& opt, cli::Stdio io) {
  cli::setup_logger("mq-send", opt.common);
  using cli::fail;
  if (Status t = validate_topic(opt.topic); !t) return fail(t);
  if (int(opt.nul) + int(opt.raw) + int(opt.json) > 1)
    return fail(Status::invalid("-0, --raw and --json exclude each other"));
  if (!opt.bodies.empty() && (opt.nul || opt.raw))
    return fail(Status::invalid("BODY arguments cannot be combined with -0 or --raw"));
  client::ProducerOptions po;
  if (opt.mode == "sync") po.mode = client::SendMode::sync;
  else if (opt.mode == "async") po.mode = client::SendMode::async;
  else if (opt.mode == "oneway") po.mode = client::SendMode::oneway;
  else return fail(Status::invalid(fmt::format("invalid mode '{}': expected sync, async or oneway", opt.mode)));
  if (opt.window == 0) return fail(Status::invalid("--window must be at least 1"));
  if (opt.retries < 0) return fail(Status::invalid("--retries must not be negative"));
  po.window = opt.window;
  po.retries = opt.retries;
  po.timeout = opt.timeout;
  po.queue = opt.queue;
  Defaults defaults{opt.key, opt.tag, {}};
  {
    auto p = parse_props(opt.props);
    if (!p) return fail(p.status());
    defaults.props = std::move(*p);
  }
  if (auto why = field_problem(defaults.key, defaults.tag, defaults.props); !why.empty())
    return fail(Status::invalid(why));

  // Receipts that cannot be written (stdout closed: the /dev/null that holds its place is
  // read-only) would be found only after every message was sent, exit 1 inviting a resend.
  if (opt.receipts) {
    int fl = ::fcntl(io.out, F_GETFL);
    if (fl < 0 || (fl & O_ACCMODE) == O_RDONLY)
      return fail(Status::io_error("cannot write receipts: standard output is closed"));
  }
  cli::install_stop_signals();
  // --retries covers the first contact too, within --timeout: a broker that is
  // (re)starting is not missed.
  auto deadline = std::chrono::steady_clock::now() + opt.timeout;
  // TLS and credentials are read once and serve every attempt (the CA and --credentials file
  // are not loaded again each time, nor the environment read after MQ_PASSWORD left it).
  auto channel = cli::channel_options(opt.common, "mq-send", opt.timeout);
  auto connect = [&](Millis timeout) -> Result<std::unique_ptr<client::Cluster>> {
    if (!channel) return channel.status();
    // One master is enough to start sending: a hung one (stopped) is not waited for
    // beyond a second after another answered (it was, for the whole --timeout).
    return cli::connect_cluster(opt.common, *channel, timeout, std::min(timeout, Millis(1000)));
  };
  // The first contact: the brokers, then a master of the topic (a listed slave may answer
  // while its master restarts: that is retried too).
  std::unique_ptr<client::Cluster> cluster;
  std::unique_ptr<client::Producer> producer;
  auto start = [&](Millis timeout) -> Status {
    auto c = connect(timeout);
    if (!c) return c.status();
    auto p = client::Producer::create(**c, opt.topic, po);
    if (!p) return p.status();
    cluster = std::move(*c);
    producer = std::move(*p);
    return Status::ok();
  };
  Status started = start(opt.timeout);
  for (int attempt = 1; !started && attempt <= opt.retries && !cli::stop_requested(); ++attempt) {
    if (started.code() != Code::unavailable) break;  // refused, reset, no master yet: worth another try
    auto left = std::chrono::duration_cast<Millis>(deadline - std::chrono::steady_clock::now());
    Millis pause = client::retry_pause(attempt, left.count());
    if (pause.count() <= 0 || left - pause < Millis(10)) break;
    spdlog::debug("{} (retry {} of {} in {})", started.message(), attempt, opt.retries, format_duration(pause));
    std::this_thread::sleep_for(pause);
    started = start(left - pause);
  }
  if (!started) {
    // Messages given as arguments still get their receipts (stdin is not read: it may not end).
    if (opt.receipts && !opt.bodies.empty()) {
      cli::OutputWriter out(io.out);
      for (size_t n = 1; n <= opt.bodies.size(); ++n) {
        client::Receipt r;
        r.line = n;
        r.status = "FAILED";
        client::append_receipt_line(r, out.buffer());
      }
      out.flush();
    }
    return fail(started);
  }
  auto& prod = *producer;
  size_t max_size = prod.max_message_size() ? prod.max_message_size() : kDefaultMaxMessage;

  cli::OutputWriter out(io.out);
  std::vector<client::Receipt> ready;
  // Failures are said as they happen (at most every 5 s), so that a run whose
  // broker went away does not look hung while it works through its input.
  uint64_t failures = 0, failures_said = 0;
  std::chrono::steady_clock::time_point said_at{};
  auto receipts_at = std::chrono::steady_clock::now();
  // warn=false for the last ones (after the input ended): the summary below says those.
  auto emit = [&](bool warn = true) {
    for (auto& r : ready) {
      if (!warn) break;
      if (r.ok || r.status != "FAILED" || r.id == storage::MessageId{}) continue;  // rejected input: said already
      ++failures;
      auto now = std::chrono::steady_clock::now();
      if (failures_said > 0 && now - said_at < std::chrono::seconds(5)) continue;
      spdlog::warn("line {} failed: {} ({} failed so far; going on with the rest)", r.line, r.error, failures);
      failures_said = failures;
      said_at = now;
    }
    if (opt.receipts && out.ok() && !ready.empty()) {
      for (auto& r : ready) client::append_receipt_line(r, out.buffer());
      out.commit();
      // Receipts reach a reader within ~10 ms while input keeps flowing, and a
      // reader that went away (| head -n 3) is seen then, not only when a whole
      // block fails to write (which let a fast input be sent nearly all).
      auto now = std::chrono::steady_clock::now();
      if (now - receipts_at >= std::chrono::milliseconds(10)) {
        receipts_at = now;
        out.flush();
        out.reader_gone();
      }
    }
    ready.clear();
  };
  // The receipts' reader went away (| head -n 3): a normal end, and no more input is
  // sent (what is in flight still finishes).
  auto reader_left = [&] { return opt.receipts && out.closed(); };
  uint64_t bad_input = 0;
  std::string first_bad;
  cli::Progress progress(!opt.common.quiet);
  auto show_progress = [&] {
    if (!progress.due()) return;
    auto st = prod.stats();
    progress.draw(fmt::format("mq-send: {} sent, {} acked{}, {:.0f}/s", cli::with_commas(st.submitted),
                              cli::with_commas(st.acked),
                              st.failed ? fmt::format(", {} failed", cli::with_commas(st.failed)) : "",
                              progress.rate(st.submitted)));
  };
  const char* unit = opt.bodies.empty() ? "line" : "argument";  // what an error's number counts
  auto take = [&](cli::InputItem&& item) {
    if (item.error.is_ok() && item.body.size() > max_size)
      item.error = Status::invalid(fmt::format("{} {}: message of {} bytes is larger than the limit of {} bytes",
                                               unit, item.line, item.body.size(), max_size));
    if (item.error.is_ok() && item.props)
      for (auto& [k, v] : *item.props)
        if (!protocol::producer_may_set(k)) {
          item.error = Status::invalid(
              fmt::format("{} {}: property \"{}\": names starting with % are the broker's", unit, item.line, k));
          break;
        }
    if (item.error.is_ok() && (item.key || item.tag || item.props)) {
      static const storage::Properties kNone;
      auto why = field_problem(item.key ? *item.key : "", item.tag ? *item.tag : "", item.props ? *item.props : kNone);
      if (!why.empty()) item.error = Status::invalid(fmt::format("{} {}: {}", unit, item.line, why));
    }
    if (!item.error.is_ok()) {
      spdlog::error("{}", item.error.message());
      if (bad_input++ == 0) first_bad = item.error.message();
      prod.reject(item.line, ready);  // its receipt, in input order
      emit();
      return;
    }
    uint64_t line = item.line;
    prod.submit(line, make_message(defaults, std::move(item)), ready);
    emit();
    show_progress();
  };

  // Every argument or the whole input was taken (not stopped by a signal or the
  // receipts' reader going away).
  bool input_done = false;
  uint64_t taken = 0;  // arguments or lines
  if (!opt.bodies.empty()) {
    uint64_t n = 0;
    for (auto& b : opt.bodies) {
      if (cli::stop_requested() || reader_left()) break;
      cli::InputItem item;
      item.line = ++n;
      if (opt.json) {
        Status s = cli::parse_json_line(b, item);
        if (!s) item.error = Status::invalid(fmt::format("argument {}: {}", n, s.message()));
      } else {
        item.body = b;
      }
      take(std::move(item));
    }
    taken = n;
    input_done = n == opt.bodies.size();
  } else {
    cli::InputMode mode = opt.nul ? cli::InputMode::nul
                          : opt.raw ? cli::InputMode::raw
                          : opt.json ? cli::InputMode::json
                                     : cli::InputMode::lines;
    cli::InputReader reader(io.in, mode, max_size);
    cli::InputItem item;
    while (!cli::stop_requested() && !reader_left()) {
      if (!reader.next(item)) {
        input_done = !reader.interrupted();
        break;
      }
      taken = item.line;
      take(std::move(item));
      if (!reader.ready()) {
        // The input paused: send what is batched, and report acks as they
        // come until more input arrives (receipts stay live on a slow pipe).
        prod.flush();
        for (;;) {
          prod.poll(ready);
          emit();
          out.flush();
          show_progress();
          if (cli::stop_requested() || reader_left()) break;
          if (prod.outstanding() == 0) {
            // Nothing in flight: wait for input, looking every 100 ms whether the
            // receipts' reader went away (then the next line is not sent).
            if (!opt.receipts || reader.wait_ready(100)) break;
            out.reader_gone();
            continue;
          }
          if (reader.wait_ready(5)) break;
        }
      }
    }
    if (!reader.status().is_ok()) {
      spdlog::error("{}", reader.status().message());
      if (bad_input++ == 0) first_bad = reader.status().message();
    }
  }
  prod.finish(ready);
  emit(/*warn=*/false);
  out.flush();
  progress.clear();
  if (!out.error().is_ok()) spdlog::error("{}", out.error().message());

  auto st = prod.stats();
  if (opt.common.verbose > 0 || (cli::is_tty(STDERR_FILENO) && !opt.common.quiet))
    spdlog::info("sent {}, acked {}, failed {}, maybe stored {}{}", st.submitted,
                 po.mode == client::SendMode::oneway ? 0 : st.acked, st.failed, st.maybe_stored,
                 bad_input ? fmt::format(", {} malformed", bad_input) : std::string());
  if (st.failed > 0) {
    Status s = Status::unavailable(
        fmt::format("{} of {} messages failed: {}", st.failed, st.submitted, st.first_error));
    spdlog::error("{}", s.message());
    return s;
  }
  if (bad_input > 0)
    return Status::corruption(fmt::format("{} malformed input {} not sent (first: {})", bad_input, bad_input == 1 ? "line" : "lines", first_bad));
  if (!out.error().is_ok()) return out.error();
  // Stopped by SIGINT/SIGTERM/SIGHUP before the input ended: what was sent is finished,
  // but the rest was not, so this is no success (a script's "mq-send < f && rm f").
  if (!input_done && cli::stop_requested() && !reader_left()) {
    Status s = Status::interrupted(fmt::format("stopped by a signal after {} {}{}: the rest of the input was not sent",
                                               taken, unit, taken == 1 ? "" : "s"));
    spdlog::warn("{}", s.message());
    return s;
  }
  return Status::ok();
}

}  // namespace mq::app

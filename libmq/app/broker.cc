#include "app/broker.h"

#include <spdlog/spdlog.h>
#include <sys/resource.h>

#include <cstdlib>
#include <filesystem>
#include <future>
#include <thread>
#include <vector>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/delay_scheduler.h"
#include "broker/group_service.h"
#include "broker/replication.h"
#include "broker/topics.h"
#include "cli/credentials.h"
#include "net/channel.h"
#include "net/io_standby.h"
#include "net/server.h"
#include "net/tls.h"
#include "storage/message_store.h"
#include "storage/record.h"
#include "util/file.h"
#include "util/thread_name.h"

namespace mq::app {

namespace asio = boost::asio;
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxMessageSizeLimit = 60u << 20;  // a send frame must stay under 64 MiB
constexpr uint64_t kMinSegmentSize = 4096;  // a larger record gets a segment of its own

// A size as --segment-size and the like take it: 63963136 is "61MiB".
std::string size_text(uint64_t n) {
  for (auto [unit, name] : {std::pair<uint64_t, const char*>{1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}})
    if (n >= unit && n % unit == 0) return fmt::format("{}{}", n / unit, name);
  return std::to_string(n);
}

// About how much: "36296 bytes" is "35.4 KiB".
std::string approx_size(uint64_t n) {
  if (n < 1024) return fmt::format("{} bytes", n);
  if (n < (1u << 20)) return fmt::format("{:.1f} KiB", n / 1024.0);
  if (n < (1u << 30)) return fmt::format("{:.1f} MiB", n / 1048576.0);
  return fmt::format("{:.1f} GiB", n / 1073741824.0);
}

std::string recovery_line(const storage::RecoveryReport& r) {
  if (r.clean) return "clean start";
  if (r.log_end == 0 && r.records_scanned == 0 && r.bytes_cut == 0) return "empty log: nothing to recover";
  std::string line = fmt::format("recovered: scanned {} records, cut {} bytes", r.records_scanned,
                                 r.bytes_cut);
  if (!r.cut_reason.empty()) line += fmt::format(" ({})", r.cut_reason);
  if (r.index_entries_rebuilt || r.index_entries_dropped)
    line += fmt::format(", index entries rebuilt {} dropped {}", r.index_entries_rebuilt,
                        r.index_entries_dropped);
  return line + fmt::format(" in {:.2f}s", r.seconds);
}

// Every queue written keeps its index file open (and every connection is a
// socket): a soft limit of 1024 would make a broker with a few hundred busy
// topics fail sends with "Too many open files". Raise it to the hard limit.
void raise_open_file_limit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
  rlim_t was = rl.rlim_cur;
  rl.rlim_cur = rl.rlim_max;
  // An unlimited hard limit is capped by fs.nr_open (1048576 by default).
  if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) {
    if (rl.rlim_max != RLIM_INFINITY) return;
    rl.rlim_cur = 1u << 20;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0) return;
  }
  spdlog::debug("open file limit raised from {} to {}", was, rl.rlim_cur);
}

bool is_loopback(const std::string& address) {
  auto hp = net::split_listen_address(address);
  if (!hp) return false;
  boost::system::error_code ec;
  auto ip = asio::ip::make_address(hp->first, ec);
  return !ec && ip.is_loopback();
}

}  // namespace

std::string data_dir(const BrokerOptions& opt) {
  if (!opt.data.empty()) return opt.data;
  if (const char* d = std::getenv("MQ_DATA"); d && *d) return d;
  // XDG: a relative XDG_DATA_HOME is ignored. No HOME either: no default (the
  // current directory would be a surprise).
  if (const char* x = std::getenv("XDG_DATA_HOME"); x && *x == '/') return (fs::path(x) / "mq").string();
  const char* home = std::getenv("HOME");
  return home && *home ? (fs::path(home) / ".local/share/mq").string() : std::string();
}

Status validate(const BrokerOptions& opt) {
  if (opt.flush != "sync" && opt.flush != "async")
    return Status::invalid(fmt::format("--flush {}: expected sync or async", opt.flush));
  if (opt.flush_interval.count() <= 0)
    return Status::invalid("--flush-interval must be above 0");
  if (opt.flush_timeout.count() <= 0)
    return Status::invalid("--flush-timeout must be above 0");
  if (opt.role != "master" && opt.role != "slave")
    return Status::invalid(fmt::format("--role {}: expected master or slave", opt.role));
  if (opt.replication != "sync" && opt.replication != "async")
    return Status::invalid(fmt::format("--replication {}: expected sync or async", opt.replication));
  if (opt.replication_timeout.count() <= 0)
    return Status::invalid("--replication-timeout must be above 0");
  if (!opt.master.empty()) {
    if (auto hp = net::split_host_port(opt.master); !hp)
      return hp.status().with_context("--master");
    if (opt.role != "slave") return Status::invalid("--master is only meaningful with --role slave");
  }
  if (opt.role == "slave") {
    if (opt.master.empty()) return Status::invalid("--role slave needs --master HOST:PORT");
  }
  if (auto hp = net::split_listen_address(opt.listen); !hp) return hp.status().with_context("--listen");
  if (opt.queues < 1 || opt.queues > broker::kMaxQueues)
    return Status::invalid(fmt::format("--queues {}: expected 1 to {}", opt.queues, broker::kMaxQueues));
  if (opt.max_message_size < 1 || opt.max_message_size > kMaxMessageSizeLimit)
    return Status::invalid(fmt::format("--max-message-size {}: expected 1 byte to 60MiB",
                                       size_text(opt.max_message_size)));
  if (opt.segment_size < kMinSegmentSize)
    return Status::invalid(fmt::format("--segment-size {}: expected at least 4KiB", size_text(opt.segment_size)));
  if (opt.retention.count() <= 0) return Status::invalid("--retention must be above 0");
  if (opt.max_connections < 1) return Status::invalid("--max-connections must be at least 1");
  if (opt.max_topics < 1) return Status::invalid("--max-topics must be at least 1");
  if (opt.max_frame < (64u << 10) || opt.max_frame > (1ull << 30))
    return Status::invalid(fmt::format("--max-frame {}: expected 64KiB to 1GiB", size_text(opt.max_frame)));
  if (opt.max_pending < (64u << 10))
    return Status::invalid(fmt::format("--max-pending {}: expected at least 64KiB", size_text(opt.max_pending)));
  if (opt.max_pending_total < opt.max_pending)
    return Status::invalid(fmt::format("--max-pending-total {}: expected at least --max-pending ({})",
                                       size_text(opt.max_pending_total), size_text(opt.max_pending)));
  if (opt.max_frame < opt.max_message_size + protocol::kFrameMargin)
    return Status::invalid(fmt::format("--max-frame {}: must exceed --max-message-size ({}) by at least 256KiB "
                                       "(a message's key, tag and properties count too)",
                                       size_text(opt.max_frame), size_text(opt.max_message_size)));
  if (opt.tls_cert.empty() != opt.tls_key.empty())
    return Status::invalid("--tls-cert and --tls-key go together");
  if (!opt.delay_levels.empty()) {
    auto levels = broker::parse_delay_levels(opt.delay_levels);
    if (!levels) return levels.status();  // it names --delay-levels
  }
  if (!opt.log_level.empty()) {
    auto l = spdlog::level::from_str(opt.log_level);
    if (l == spdlog::level::off && opt.log_level != "off")
      return Status::invalid(fmt::format(
          "--log-level {}: expected trace, debug, info, warn, error or off", opt.log_level));
  }
  return Status::ok();
}

Status broker(const BrokerOptions& opt) {
  MQ_RETURN_IF_ERROR(validate(opt));
  if (!opt.log_level.empty()) MQ_RETURN_IF_ERROR(cli::set_log_level(opt.log_level));
  raise_open_file_limit();

  fs::path dir = data_dir(opt);
  if (dir.empty()) return Status::invalid("no data directory: give --data DIR or set MQ_DATA (HOME is not set)");
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) return Status::io_error(fmt::format("data directory {}: {}", dir.string(), ec.message()));
  auto lock = DirLock::acquire(dir);
  if (!lock) return lock.status();

  auto topics = broker::TopicRegistry::open(dir);
  if (!topics) return topics.status();

  storage::StoreOptions so;
  so.dir = dir;
  so.flush = opt.flush == "sync" ? storage::FlushMode::sync : storage::FlushMode::async;
  so.flush_interval = opt.flush_interval;
  so.flush_timeout = opt.flush_timeout;
  so.segment_size = opt.segment_size;
  so.retention = opt.retention;
  so.retention_first = Millis(1000);  // what a broker down for long finds old goes at once
  so.on_recovery_progress = [](uint64_t scanned, uint64_t total) {
    spdlog::info("recovering: scanned {} of {} MiB of log", scanned >> 20, total >> 20);
  };
  so.on_retention = [retention = opt.retention](const storage::StoreOptions::RetentionReport& r) {
    spdlog::info("retention: deleted {} log segment{} ({}) older than {}; the log starts at byte {} now, "
                 "its oldest message stored {}",
                 r.segments, r.segments == 1 ? "" : "s", approx_size(r.bytes), format_duration(retention), r.log_start,
                 format_time(r.oldest_store_ms));
  };
  storage::RecoveryReport report;
  auto store = storage::MessageStore::open(so, &report);
  if (!store) return store.status().with_context(fmt::format("data directory {}", dir.string()));
  if (auto st = (*topics)->adopt((*store)->queues(), opt.queues); !st) {
    (void)(*store)->close();
    return st;
  }

  // Security settings are read before anything listens: a bad file stops the start.
  std::shared_ptr<const broker::AuthConfig> auth;
  if (!opt.auth.empty()) {
    auto a = broker::AuthConfig::load(opt.auth);
    if (!a) {
      (void)(*store)->close();
      return a.status();
    }
    auth = std::make_shared<const broker::AuthConfig>(std::move(*a));
  }
  net::ServerOptions sopt;
  sopt.max_connections = opt.max_connections;
  sopt.max_frame = static_cast<uint32_t>(opt.max_frame);
  sopt.max_pending_bytes = opt.max_pending;
  sopt.max_pending_total = opt.max_pending_total;
  if (auth) {
    sopt.admission_timeout = Millis(10000);
    // Only a login may come before the login: its frames are small.
    if (!auth->has_rules(broker::kAnonymous)) sopt.unadmitted_max_frame = 64u << 10;
  }
  if (!opt.tls_cert.empty()) {
    auto tls = net::server_tls_context(opt.tls_cert, opt.tls_key);
    if (!tls) {
      (void)(*store)->close();
      return tls.status();
    }
    sopt.tls = std::move(*tls);
    // As for --auth files, but a warning: many setups share a key by group (ssl-cert).
    std::error_code kec;
    auto perms = fs::status(opt.tls_key, kec).permissions();
    if (!kec && (perms & fs::perms::others_read) != fs::perms::none)
      spdlog::warn("--tls-key {} may be read by every user of this machine (chmod 600 it)", opt.tls_key);
  }
  net::ClientSecurity to_master;
  if (opt.role == "slave") {
    auto sec = cli::client_security(opt.common);
    if (!sec) {
      (void)(*store)->close();
      return sec.status();
    }
    to_master = std::move(*sec);
    // A slave serves what its master protects: without access control of its own it
    // would let anyone read every topic and commit any group's offsets (which its
    // master then adopts). Logging in to the master says the master has --auth.
    if (!to_master.user.empty() && !auth) {
      (void)(*store)->close();
      return Status::invalid(fmt::format(
          "--role slave logs in to its master as '{}' but has no --auth of its own: its clients would read "
          "every topic and commit any group's offsets unchecked (give it --auth FILE; the master's file serves)",
          to_master.user));
    }
    if (to_master.tls && !sopt.tls)
      spdlog::warn("the master is reached over TLS but this slave serves its clients without it (no --tls-cert): "
                   "what the master sends encrypted leaves here in plaintext");
  }

  asio::io_context io;
  // Group commit: the append that completes a group has its round (fdatasync,
  // answers) run on an io thread after the requests it already read, instead
  // of waking the flusher: two thread wake-ups fewer per round. Should that
  // fdatasync stall, the standby thread serves the other connections.
  net::IoStandby standby(io);
  (*store)->set_round_runner([&standby](std::function<void()> round) { standby.post(std::move(round)); });
  broker::BrokerConfig cfg;
  cfg.default_queues = opt.queues;
  cfg.max_message_size = static_cast<uint32_t>(opt.max_message_size);
  cfg.auto_create = !opt.no_auto_create;
  cfg.max_topics = opt.max_topics;
  if (size_t n = (*topics)->user_topics(); n > opt.max_topics)
    spdlog::warn("{} topics exist, more than --max-topics {}: they are kept, new ones are refused",
                 n, opt.max_topics);
  broker::Broker brk(io, **store, **topics, cfg);
  if (auth) brk.set_auth(auth);
  auto levels = broker::parse_delay_levels(opt.delay_levels.empty() ? broker::kDefaultDelayLevels
                                                                     : opt.delay_levels);
  if (!levels) return levels.status();
  auto groups = broker::GroupService::create(io, brk, **store, **topics, dir, std::move(*levels));
  if (!groups) {
    (void)(*store)->close();
    return groups.status().with_context(fmt::format("data directory {}", dir.string()));
  }

  const bool slave = opt.role == "slave";
  broker::ReplicationOptions ropt;
  ropt.sync = opt.replication == "sync";
  ropt.timeout = opt.replication_timeout;
  ropt.security = to_master;
  ropt.offsets = &(*groups)->offsets();
  std::unique_ptr<broker::ReplicationMaster> repl_master;
  if (!slave) repl_master = std::make_unique<broker::ReplicationMaster>(io, brk, **store, **topics, ropt);
  else brk.set_role(protocol::Role::slave, opt.master);

  auto server = net::Server::listen(
      io, opt.listen, sopt,
      [&brk](protocol::Frame f, net::Responder r) { brk.handle(std::move(f), std::move(r)); },
      [&brk](uint64_t id) { brk.connection_closed(id); });
  if (!server) {
    (void)(*store)->close();
    return server.status();
  }
  const std::string addr = (*server)->local_address();
  brk.set_advertised_address(addr);

  std::promise<int> stop;
  auto stopped = stop.get_future();
  asio::signal_set signals(io, SIGINT, SIGTERM, SIGHUP);  // SIGHUP: its terminal closed
  signals.async_wait([&stop](const boost::system::error_code& e, int sig) {
    if (!e) stop.set_value(sig);
  });

  // The flusher, the preallocation thread and (on a test box) the clients
  // need cores too: on 2 cores one io thread (no handoffs between two
  // threads of one io_context, no contention for the append lock) served one
  // message at a time sync producers 15 % faster than two.
  unsigned nthreads = opt.io_threads ? opt.io_threads : std::clamp(std::thread::hardware_concurrency() / 2, 1u, 4u);
  auto work = asio::make_work_guard(io);
  std::vector<std::thread> threads;
  for (unsigned i = 0; i < nthreads; ++i)
    threads.emplace_back([&io] {
      name_this_thread("mq-io");
      io.run();
    });
  auto stop_threads = [&] {
    work.reset();
    io.stop();
    for (auto& t : threads) t.join();
  };

  std::unique_ptr<broker::ReplicationSlave> repl_slave;
  if (slave) {
    repl_slave = std::make_unique<broker::ReplicationSlave>(**store, **topics, opt.master, addr, ropt);
    repl_slave->start();
  }

  spdlog::info("listening on {}, data {}, flush {}; {}", addr, dir.string(),
               opt.flush == "sync" ? fmt::format("sync (timeout {})", format_duration(opt.flush_timeout)) : fmt::format("async every {}", format_duration(opt.flush_interval)),
               recovery_line(report));
  // Bytes cut are records gone (a torn tail not acknowledged, or damage): seen with -q too.
  if (report.bytes_cut > 0)
    spdlog::warn("recovery cut the log's last {} bytes at position {}{}: records there are gone", report.bytes_cut,
                 report.log_end, report.cut_reason.empty() ? "" : fmt::format(" ({})", report.cut_reason));
  if (!report.checkpoint_unwritten.empty())
    spdlog::warn("started on a full disk ({}): reads are served, writes are refused until space returns, and "
                 "until a checkpoint is written again a crash makes the next start scan the log",
                 report.checkpoint_unwritten);
  if (auth)
    spdlog::info("access control from {}: {} users", opt.auth, auth->users());
  if (sopt.tls) spdlog::info("TLS with certificate {}", opt.tls_cert);
  if (!is_loopback(addr) && !auth)
    spdlog::warn("listening on {}, which is not a loopback address, without --auth: anyone who can "
                 "reach it can read and write every topic",
                 addr);
  else if (!is_loopback(addr) && !sopt.tls)
    spdlog::warn("listening on {} without TLS: passwords are never sent, but messages cross the "
                 "network in clear (see --tls-cert)",
                 addr);
  if (!opt.ready_file.empty()) {
    if (auto st = write_file_atomic(opt.ready_file, addr + "\n"); !st) {
      (*server)->stop_accepting();
      (*server)->close_all();
      if (repl_slave) repl_slave->stop();
      brk.shutdown(Millis(2000));
      if (repl_master) repl_master->shutdown();
      stop_threads();
      (void)(*store)->close();
      return st.with_context("--ready-file");
    }
  }

  int sig = stopped.get();
  spdlog::info("{} received: stopping", sig == SIGINT ? "SIGINT" : sig == SIGHUP ? "SIGHUP" : "SIGTERM");
  (*server)->stop_accepting();
  if (!brk.shutdown(Millis(10000)))
    spdlog::warn("{} appends still unacknowledged after 10s", brk.appends_in_flight());
  if (repl_slave) repl_slave->stop();
  if (repl_master) repl_master->shutdown();
  Status groups_closed = (*groups)->close();  // said below: the stop is then not clean
  Status closed = (*store)->close();
  {
    auto st = (*store)->stats();
    spdlog::info("stored {} records in {} appends, {} fdatasyncs of the log ({:.1f} records per fdatasync)",
                 st.records, st.appends, st.log_syncs,
                 st.log_syncs ? static_cast<double>(st.records) / static_cast<double>(st.log_syncs) : 0.0);
    if (st.flush_timeouts > 0)
      spdlog::info("{} appends answered FLUSH_DISK_TIMEOUT (fdatasync slower than --flush-timeout {})",
                   st.flush_timeouts, format_duration(opt.flush_timeout));
  }
  // Let the last acks reach their sockets before closing the connections.
  auto end = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while ((*server)->busy() > 0 && std::chrono::steady_clock::now() < end)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  (*server)->close_all();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  stop_threads();
  if (!groups_closed && !closed) spdlog::error("consumer offsets not saved: {}", groups_closed.message());
  if (!closed) return closed.with_context("closing the store");
  if (!groups_closed) return groups_closed.with_context("consumer offsets not saved");
  spdlog::info("stopped cleanly");
  return Status::ok();
}

}  // namespace mq::app

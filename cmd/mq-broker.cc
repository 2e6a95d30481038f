// mq-broker: the server. Flags only; the work is in app/broker.cc.
#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>

#include <iostream>

#include "app/broker.h"
#include "broker/delay_scheduler.h"
#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App cmd{"store messages durably and serve producers and consumers", "mq-broker"};
  cmd.footer(
      "Examples:\n"
      "  mq-broker                                            # ~/.local/share/mq, 127.0.0.1:9876\n"
      "  mq-broker --data /var/lib/mq --listen 0.0.0.0:9876 --auth users --tls-cert c.pem --tls-key k.pem\n"
      "  mq-broker --data d2 --listen 127.0.0.1:9877 --role slave --master 127.0.0.1:9876\n");
  mq::app::BrokerOptions opt;
  mq::cli::add_verbosity_flags(cmd, opt.common);
  cmd.set_config("--config", "", "read options from a TOML/INI file: name = value with the long flag names, no "
                                 "sections; the command line wins")
      ->type_name("FILE");
  // A misspelt key (flsuh = "async") is a usage error, as the same typo as a flag is.
  cmd.allow_config_extras(CLI::config_extras_mode::error);
  cmd.add_option("--data", opt.data,
                 "data directory (default $MQ_DATA, else ${XDG_DATA_HOME:-~/.local/share}/mq)");
  cmd.add_option("--listen", opt.listen, "HOST:PORT to listen on (port 0: any free port)")
      ->default_str("127.0.0.1:9876");
  cmd.add_option("--flush", opt.flush, "sync: ack after fdatasync; async: flush every interval")
      ->check(CLI::IsMember({"sync", "async"}))
      ->default_str("sync");
  cmd.add_option_function<std::string>("--flush-interval",
                                       mq::cli::to_duration(opt.flush_interval, "--flush-interval"),
                                       "async flush interval (default 500ms)");
  cmd.add_option_function<std::string>("--flush-timeout",
                                       mq::cli::to_duration(opt.flush_timeout, "--flush-timeout"),
                                       "sync flush: answer FLUSH_DISK_TIMEOUT when fdatasync takes longer (default 3s)");
  cmd.add_option("--role", opt.role, "master or slave")
      ->check(CLI::IsMember({"master", "slave"}))
      ->default_str("master");
  cmd.add_option("--master", opt.master, "the master to replicate (slaves)");
  cmd.add_option("--replication", opt.replication, "sync or async (masters)")
      ->check(CLI::IsMember({"sync", "async"}))
      ->default_str("async");
  cmd.add_option_function<std::string>("--replication-timeout",
                                       mq::cli::to_duration(opt.replication_timeout, "--replication-timeout"),
                                       "wait for a slave this long (default 3s)");
  cmd.add_option("--queues", opt.queues, "queues of an auto-created topic")
      ->check(mq::cli::whole_number(1, 1024))
      ->default_str("4");
  cmd.add_option_function<std::string>("--max-message-size", mq::cli::to_size(opt.max_message_size, "--max-message-size"),
                                       "largest message body (default 4MiB)");
  cmd.add_option_function<std::string>("--retention",
                                       mq::cli::to_duration(opt.retention, "--retention"),
                                       "delete log segments older than this (default 72h)");
  cmd.add_option_function<std::string>("--segment-size", mq::cli::to_size(opt.segment_size, "--segment-size"),
                                       "commit log segment size (default 1GiB)");
  // In --config a TOML list (delay-levels = ["1s", "5s"]) is the same as "1s 5s".
  cmd.add_option("--delay-levels", opt.delay_levels,
                 std::string("retry delays (default \"") + mq::broker::kDefaultDelayLevels + "\")")
      ->multi_option_policy(CLI::MultiOptionPolicy::Join)
      ->delimiter(' ');
  cmd.add_flag("--no-auto-create", opt.no_auto_create, "refuse sends to unknown topics");
  cmd.add_option("--ready-file", opt.ready_file, "write the bound HOST:PORT here once listening");
  cmd.add_option("--log-level", opt.log_level, "trace, debug, info, warn, error or off (default info)");
  cmd.add_option("--max-connections", opt.max_connections, "refuse connections beyond this")
      ->check(mq::cli::whole_number(1))
      ->default_str("10000");
  cmd.add_option("--io-threads", opt.io_threads,
                 "threads serving connections (default: 1 on up to 2 cores, else half the cores, at most 4)")
      ->check(mq::cli::whole_number(0, 64));
  cmd.add_option("--max-topics", opt.max_topics,
                 "topics producers may create (the broker's own %... topics exempt)")
      ->check(mq::cli::whole_number(1))
      ->default_str("10000");
  cmd.add_option_function<std::string>("--max-frame", mq::cli::to_size(opt.max_frame, "--max-frame"),
                                       "close connections that send a larger frame (default 64MiB)");
  cmd.add_option_function<std::string>("--max-pending", mq::cli::to_size(opt.max_pending, "--max-pending"),
                                       "answers one connection may leave unread (default 16MiB)");
  cmd.add_option_function<std::string>("--max-pending-total", mq::cli::to_size(opt.max_pending_total, "--max-pending-total"),
                                       "answers all connections together may leave unread (default 256MiB)");
  cmd.add_option("--auth", opt.auth,
                 "users and permissions file (see mq-broker(1)); without it anyone may do anything");
  cmd.add_option("--tls-cert", opt.tls_cert, "serve TLS with this certificate chain (PEM)");
  cmd.add_option("--tls-key", opt.tls_key, "the private key of --tls-cert (PEM)");
  cmd.add_option("--tls-ca", opt.common.tls_ca, "slaves: connect to the master with TLS, trusting this CA")
      ->envname("MQ_TLS_CA");
  cmd.add_option("--credentials", opt.common.credentials,
                 "slaves: user and password for the master (else MQ_USER and MQ_PASSWORD)");
  if (auto early = mq::cli::parse(cmd, argc, argv)) return *early;
  // A value out of range is said like a flag CLI11 refused, not as a log line.
  if (auto v = mq::app::validate(opt); !v) {
    std::cerr << "mq-broker: error: " << v.message() << " (see mq-broker --help)\n";
    return 2;
  }
  mq::cli::command_line_verbosity_wins(argc, argv, opt.common, opt.log_level);
  mq::cli::setup_logger("mq-broker", opt.common, /*with_time=*/true);
  auto st = mq::app::broker(opt);
  if (!st) spdlog::error("{}", st.message());
  return mq::cli::exit_code(st);
}

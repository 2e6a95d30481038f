// mq-replay: re-read stored messages, re-publish them, or re-drive dead letters. Thin main.
#include "app/replay.h"
#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App cmd{"re-read stored messages, re-publish them, or re-drive dead letters", "mq-replay"};
  cmd.footer(
      "Examples:\n"
      "  mq-replay -t orders --queue 0 --from '2026-11-24 10:00' --until '2026-11-24 10:15' --format json\n"
      "  mq-replay -t orders --from -1h --to-topic orders-test --rate 100\n"
      "  mq-replay --dlq workers --dry-run\n"
      "  mq-replay -i saved.json --to-topic orders\n");
  mq::app::ReplayOptions opt;
  mq::cli::add_common_flags(cmd, opt.common);
  cmd.add_option("-t,--topic", opt.topic, "topic to read");
  cmd.add_option("--dlq", opt.dlq, "re-drive the dead letters of GROUP");
  cmd.add_option("-i,--input", opt.input, "publish a file written by --format json (- = stdin)");
  cmd.add_option("--from", opt.from, "first OFFSET, -N (N before the end), TIME or earliest (the default)");
  cmd.add_option("--until", opt.until, "stop before OFFSET, -N, TIME or latest (default: the end at start)");
  cmd.add_option_function<uint32_t>("--queue", [&opt](const uint32_t& q) { opt.queue = q; }, "only queue Q")
      ->check(mq::cli::whole_number(0, 65535));
  cmd.add_option_function<std::string>("--key", [&opt](const std::string& k) { opt.key = k; },
                                       "only messages with key KEY");
  cmd.add_option("--tag", opt.tag, "only messages with these tags: TAG[||TAG...]");
  cmd.add_option("--format", opt.format, "body, json or a template (%t %b %q %o %i %k %T %s %p{NAME}); default body, json for --dlq --dry-run");
  cmd.add_flag("-0,--null", opt.nul, "end each body with NUL instead of a newline");
  cmd.add_flag("--merge", opt.merge, "order the messages of all queues by store time");
  cmd.add_option("--to-topic", opt.to_topic, "publish to DEST instead of writing to stdout");
  cmd.add_option("--rate", opt.rate, "at most N messages a second")->check(mq::cli::non_negative_number());
  cmd.add_flag("--receipts", opt.receipts, "print LINE ID BROKER QUEUE OFFSET STATUS per message published");
  cmd.add_flag("--dry-run", opt.dry_run, "--dlq: list the dead letters, publish nothing");
  cmd.add_flag("--force", opt.force, "--dlq: re-drive dead letters re-driven before, too");
  cmd.add_option("--window", opt.window, "messages in flight when publishing")
      ->check(mq::cli::whole_number(1))
      ->default_str("1024");
  cmd.add_option_function<std::string>("--timeout", mq::cli::to_timeout(opt.timeout, "--timeout"),
                                       "time budget per request")
      ->default_str("5s");
  if (auto early = mq::cli::parse(cmd, argc, argv)) return *early;
  opt.window_given = cmd.count("--window") > 0;
  return mq::cli::exit_code(mq::app::replay(opt, mq::cli::stdio()));
}

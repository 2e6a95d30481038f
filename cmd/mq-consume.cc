// mq-consume: tail a topic, or consume it as a group (to stdout or --exec). Thin main.
#include "app/consume.h"
#include <climits>

#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App cmd{"tail or consume messages of a topic", "mq-consume"};
  cmd.footer(
      "Examples:\n"
      "  mq-consume -t orders --from earliest -e            # everything stored, then exit\n"
      "  mq-consume -t orders --format json | jq .key        # follow new messages as JSON\n"
      "  mq-consume -t orders -g billing --exec ./bill.sh --concurrency 8\n");
  mq::app::ConsumeOptions opt;
  mq::cli::add_common_flags(cmd, opt.common);
  cmd.add_option("-t,--topic", opt.topic, "topic to read")->required();
  cmd.add_option("--from", opt.from, "earliest, latest, OFFSET, -N (N before the end) or TIME")
      ->default_str("latest");
  cmd.add_option("-n,--count", opt.count, "stop after COUNT messages")->check(mq::cli::whole_number());
  cmd.add_flag("-e,--exit", opt.to_end, "stop at the end of every queue");
  cmd.add_option("--format", opt.format, "body, json or a template (%t %b %q %o %i %k %T %s %p{NAME})")
      ->default_str("body");
  cmd.add_flag("-0,--null", opt.nul, "end each body with NUL instead of a newline");
  cmd.add_option("--tag", opt.tag, "only messages with these tags: TAG[||TAG...]");
  cmd.add_option_function<std::string>("--timeout", mq::cli::to_timeout(opt.timeout, "--timeout"),
                                       "per request to a broker, on top of a long poll's wait")
      ->default_str("3s");
  const char* g = "Consumer group";
  cmd.add_option("-g,--group", opt.group, "consume as this group (commits offsets)")->group(g);
  cmd.add_option("--exec", opt.exec, "run sh -c CMD per message, body on stdin")->group(g);
  cmd.add_option("--concurrency", opt.concurrency, "commands at once")
      ->check(mq::cli::whole_number(1, 1024))  // a thread each
      ->default_str("1")
      ->group(g);
  cmd.add_flag("--orderly", opt.orderly, "keep each queue strictly in order")->group(g);
  cmd.add_option("--max-span", opt.max_span, "in-flight span per queue")
      ->check(mq::cli::whole_number(1))
      ->default_str("2000")
      ->group(g);
  cmd.add_option_function<std::string>("--consume-timeout",
                                       mq::cli::to_timeout(opt.consume_timeout, "--consume-timeout"),
                                       "a message unfinished after this has failed")
      ->default_str("15m")
      ->group(g);
  cmd.add_option("--max-retries", opt.max_retries, "retries before the dead-letter queue")
      ->check(mq::cli::whole_number(0, INT_MAX))
      ->default_str("16")
      ->group(g);
  cmd.add_option_function<std::string>("--commit-interval",
                                       mq::cli::to_duration(opt.commit_interval, "--commit-interval"),
                                       "how often offsets are committed")
      ->default_str("5s")
      ->group(g);
  cmd.add_option_function<std::string>("--stop-grace",
                                       mq::cli::to_duration(opt.stop_grace, "--stop-grace"),
                                       "on SIGINT/SIGTERM, how long running commands may finish")
      ->default_str("5s")
      ->group(g);
  if (auto early = mq::cli::parse(cmd, argc, argv)) return *early;
  for (const char* name : {"--concurrency", "--max-span", "--consume-timeout", "--max-retries", "--commit-interval",
                           "--stop-grace"})
    if (cmd.count(name) > 0 && opt.group_option_given.empty()) opt.group_option_given = name;
  opt.format_given = cmd.count("--format") > 0;
  return mq::cli::exit_code(mq::app::consume(opt, mq::cli::stdio()));
}

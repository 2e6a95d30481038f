// mq-send: publish messages to a topic. Thin main: flags -> app::send.
#include "app/send.h"
#include <climits>

#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App cmd{"publish messages to a topic", "mq-send"};
  cmd.footer(
      "Examples:\n"
      "  mq-send -t demo hello world                        # two messages from arguments\n"
      "  seq 1000 | mq-send -t numbers --receipts > acks     # one message per line, a receipt each\n"
      "  mq-consume -t a --from earliest -e --format json | mq-send -t b --json   # copy a topic\n");
  mq::app::SendOptions opt;
  mq::cli::add_common_flags(cmd, opt.common);
  cmd.add_option("-t,--topic", opt.topic, "topic to publish to")->required();
  cmd.add_option("--mode", opt.mode, "sync, async or oneway")
      ->check(CLI::IsMember({"sync", "async", "oneway"}))
      ->default_str("async");
  cmd.add_option("--window", opt.window, "async: messages in flight")->check(mq::cli::whole_number(1))->default_str("1024");
  cmd.add_option("--retries", opt.retries, "retries after a failed attempt")->check(mq::cli::whole_number(0, INT_MAX))->default_str("2");
  cmd.add_option_function<std::string>("--timeout", mq::cli::to_timeout(opt.timeout, "--timeout"),
                                       "time budget per message, retries included")
      ->default_str("5s");
  cmd.add_option("-k,--key", opt.key, "message key (same key, same queue)");
  cmd.add_option("--tag", opt.tag, "message tag");
  cmd.add_option("-p,--prop", opt.props, "property NAME=VALUE (repeatable)")
      ->allow_extra_args(false);  // -p a=1 BODY: BODY is a message, not another property
  cmd.add_option_function<uint32_t>("--queue", [&opt](const uint32_t& q) { opt.queue = q; }, "send to queue N only")
      ->check(mq::cli::whole_number(0, 65535));
  auto* nul = cmd.add_flag("-0,--null", opt.nul, "stdin: NUL-separated messages");
  auto* raw = cmd.add_flag("--raw", opt.raw, "stdin: all of it is one message");
  auto* json = cmd.add_flag("--json", opt.json, "stdin: one JSON object per line");
  nul->excludes(raw)->excludes(json);
  raw->excludes(json);
  cmd.add_flag("--receipts", opt.receipts, "print LINE ID BROKER QUEUE OFFSET STATUS per message");
  cmd.add_option("BODY", opt.bodies, "message bodies (default: read stdin)");
  if (auto early = mq::cli::parse(cmd, argc, argv)) return *early;
  return mq::cli::exit_code(mq::app::send(opt, mq::cli::stdio()));
}

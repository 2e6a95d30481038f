// mq-offset: inspect topics and group progress; reset, export, import offsets. Thin main.
#include "app/offset.h"
#include "cli/common.h"

int main(int argc, char** argv) {
  CLI::App cmd{"inspect topics and consumer-group offsets; reset, export and import them", "mq-offset"};
  cmd.footer(
      "Examples:\n"
      "  mq-offset topics -t orders\n"
      "  mq-offset show -g billing\n"
      "  mq-offset reset -g billing -t orders --to-time -1h --dry-run\n"
      "  mq-offset export -g billing > offsets.tsv; mq-offset import < offsets.tsv\n");
  mq::app::OffsetOptions opt;
  mq::cli::add_common_flags(cmd, opt.common);
  cmd.add_option("--format", opt.format, "table, tsv or json (default: table on a terminal, else tsv)")
      ->check(CLI::IsMember({"table", "tsv", "json"}));
  cmd.add_option_function<std::string>("--timeout", mq::cli::to_timeout(opt.timeout, "--timeout"), "per request")
      ->default_str("5s");
  cmd.require_subcommand(1);
  // Subcommands inherit this: the common flags work after the subcommand too
  // (`mq-offset topics -b HOST:PORT`, as SPEC writes it).
  cmd.fallthrough();
  auto* topics = cmd.add_subcommand("topics", "queues of each topic: min/max offsets, sizes, newest message");
  topics->add_option("-t,--topic", opt.topic, "only this topic");
  auto* show = cmd.add_subcommand("show", "a group's committed offsets, lag and commit blockers per queue");
  show->add_option("-g,--group", opt.group, "consumer group")->required();
  show->add_option("-t,--topic", opt.topic, "only this topic");
  cmd.add_subcommand("groups", "every group: live members, topics, total lag");
  auto* reset = cmd.add_subcommand("reset", "move a group's offsets (compare-and-set, writes an undo file)");
  reset->add_option("-g,--group", opt.group, "consumer group")->required();
  reset->add_option("-t,--topic", opt.topic, "topic")->required();
  reset->add_option("--to", opt.to, "earliest, latest or an offset");
  reset->add_option("--to-time", opt.to_time, "first message stored at or after TIME");
  reset->add_option_function<std::string>("--shift", mq::cli::to_signed(opt.shift, "--shift"),
                                          "move by N (negative: back)");
  reset->add_option_function<uint32_t>("--queue", [&opt](const uint32_t& q) { opt.queue = q; }, "only queue Q")
      ->check(mq::cli::whole_number(0, 65535));
  reset->add_flag("--dry-run", opt.dry_run, "print old -> new, change nothing");
  reset->add_option("--undo-dir", opt.undo_dir,
                    "where undo files go (default $XDG_STATE_HOME/mq/undo, else ~/.local/state/mq/undo)");
  auto* exp = cmd.add_subcommand("export", "a group's offsets as TSV: GROUP TOPIC BROKER QUEUE OFFSET");
  exp->add_option("-g,--group", opt.group, "consumer group")->required();
  exp->add_option("-t,--topic", opt.topic, "only this topic");
  cmd.add_subcommand("import", "set offsets from export TSV on stdin (all lines checked first)");
  for (auto* sub : cmd.get_subcommands({})) {
    sub->add_option("--format", opt.format, "table, tsv or json (default: table on a terminal, else tsv)")
        ->check(CLI::IsMember({"table", "tsv", "json"}));
    // The common flags are the top level's (they work after the command too): named here.
    sub->footer("Also, before or after the command: -b/--broker, --timeout, --credentials, --tls-ca, -q, -v "
                "(see mq-offset --help).");
  }
  if (auto early = mq::cli::parse(cmd, argc, argv)) return *early;
  for (auto* sub : cmd.get_subcommands())
    if (sub->parsed()) opt.command = sub->get_name();
  return mq::cli::exit_code(mq::app::offset(opt, mq::cli::stdio()));
}

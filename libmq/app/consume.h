// mq-consume: without -g, a read-only tail of a topic to stdout; with -g, a
// member of a consumer group: at-least-once, to stdout or through --exec
// (see SPEC and client/group_consumer.h).
#pragma once

#include <string>

#include "cli/common.h"
#include "cli/stdio.h"
#include "util/status.h"

namespace mq::app {

struct ConsumeOptions {
  cli::CommonOptions common;
  std::string topic;
  std::string group;               // -g
  std::string from;                // earliest | latest | OFFSET | TIME; "" = latest
  uint64_t count = 0;              // -n; 0 = no limit
  bool to_end = false;             // -e
  std::string format = "body";     // body | json | TEMPLATE
  bool nul = false;                // -0
  std::string tag;                 // TAG[||TAG...]
  Millis timeout{3000};            // per request (pulls: on top of the long poll)
  // Consumer-group options.
  std::string exec;
  int concurrency = 1;
  bool orderly = false;
  uint64_t max_span = 2000;
  Millis consume_timeout{15 * 60 * 1000};
  int max_retries = 16;
  Millis commit_interval{5000};
  Millis stop_grace{5000};
  // Set by the command line: the first group-only option given ("--max-span"),
  // and whether --format was given (it has no effect with --exec).
  std::string group_option_given;
  bool format_given = false;
};

// Writes messages to io.out until -n/-e is satisfied, SIGINT/SIGTERM, or
// stdout is closed (all normal ends: ok).
Status consume(const ConsumeOptions& opt, cli::Stdio io);

}  // namespace mq::app

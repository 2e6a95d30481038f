// mq-replay: read a stored range of a topic (to stdout or --to-topic),
// re-drive a group's dead letters (--dlq), or publish a file written by
// --format json (-i). Never touches a consumer group's offsets; --dlq
// remembers what it re-drove in the offsets of the group "redrive.GROUP"
// on the dead-letter topic (see SPEC and client/replay.h).
#pragma once

#include <optional>
#include <string>

#include "cli/common.h"
#include "cli/stdio.h"
#include "util/status.h"

namespace mq::app {

struct ReplayOptions {
  cli::CommonOptions common;
  std::string topic;              // -t
  std::string dlq;                // --dlq GROUP
  std::string input;              // -i FILE ("-" = stdin)
  std::string from, until;        // OFFSET | TIME; "" = the queue's start / end
  std::optional<uint32_t> queue;  // --queue
  std::optional<std::string> key;
  std::string tag;                // TAG[||TAG...]
  std::string format;             // body | json | TEMPLATE; "" = body (json for --dlq --dry-run)
  bool nul = false;               // -0
  bool merge = false;
  std::string to_topic;
  double rate = 0;                // messages a second; 0 = no limit
  bool receipts = false;
  bool dry_run = false;
  bool force = false;
  size_t window = 1024;
  bool window_given = false;  // --window was given (it applies only when publishing)
  Millis timeout{5000};
};

// ok when every message was written (a closed stdout included) or published
// with SEND_OK; invalid_argument for bad options; corruption (exit 1, as
// mq-send) when malformed -i lines were skipped and the others published.
Status replay(const ReplayOptions& opt, cli::Stdio io);

}  // namespace mq::app

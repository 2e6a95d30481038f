// mq-send: publish messages from arguments or standard input (see SPEC).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cli/common.h"
#include "cli/stdio.h"
#include "util/status.h"

namespace mq::app {

struct SendOptions {
  cli::CommonOptions common;
  std::string topic;
  std::string mode = "async";  // sync | async | oneway
  size_t window = 1024;
  int retries = 2;
  Millis timeout{5000};
  std::string key;
  std::string tag;
  std::vector<std::string> props;  // NAME=VALUE
  std::optional<uint32_t> queue;
  bool nul = false;   // -0
  bool raw = false;   // --raw
  bool json = false;  // --json
  bool receipts = false;
  std::vector<std::string> bodies;  // BODY arguments (with --json: JSON objects)
};

// Sends every message; ok only when each got SEND_OK (oneway: was written).
// invalid_argument for bad options; otherwise the first failure's cause.
Status send(const SendOptions& opt, cli::Stdio io);

}  // namespace mq::app

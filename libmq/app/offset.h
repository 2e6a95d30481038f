// mq-offset: inspect topics and consumer-group progress; reset, export and
// import offsets (SPEC "mq-offset").
#pragma once

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "cli/common.h"
#include "cli/stdio.h"
#include "util/status.h"

namespace mq::app {

struct OffsetOptions {
  cli::CommonOptions common;
  std::string command;  // topics | show | groups | reset | export | import
  std::string group, topic;
  std::string format;   // table | tsv | json ("" = table on a terminal, else tsv)
  // reset
  std::string to;       // earliest | latest | OFFSET
  std::string to_time;
  std::optional<int64_t> shift;
  std::optional<uint32_t> queue;
  bool dry_run = false;
  std::string undo_dir;  // "" = ${XDG_STATE_HOME:-~/.local/state}/mq/undo
  Millis timeout{5000};
};

Status offset(const OffsetOptions& opt, cli::Stdio io);

// One line of `mq-offset import` input: GROUP TOPIC BROKER QUEUE OFFSET (tab-separated).
struct OffsetLine {
  std::string group, topic, broker;
  uint32_t queue = 0;
  int64_t offset = 0;
  size_t line = 0;  // in the input, from 1
};
// Parses import input (blank lines and '#' comments skipped, CRLF accepted):
// valid lines go to `lines`, one message per bad line ("line N: ...") to `errors`.
void parse_offset_tsv(std::string_view input, std::vector<OffsetLine>& lines,
                      std::vector<std::string>& errors);

// reset --shift: `offset` moved by `shift` and clamped to [min, max] (min <= max); a sum
// past the range of int64 saturates (a huge shift is the end of the queue, not a wrap
// to its start).
int64_t shift_offset(int64_t offset, int64_t shift, int64_t min, int64_t max);

// A group's lag on a queue holding [min, max): what it has not consumed and still can
// (messages retention deleted before it read them are not counted). committed < 0: none.
int64_t queue_lag(int64_t committed, uint64_t min, uint64_t max);

// Creates, empty, a new undo file in dir for a reset of group at time ms:
// reset-GROUP-MS.tsv, or reset-GROUP-MS-2.tsv (-3, ...) when that exists, so that
// resets of one group in the same millisecond never share a file.
Result<std::filesystem::path> claim_undo_file(const std::filesystem::path& dir, const std::string& group,
                                              int64_t ms);

}  // namespace mq::app

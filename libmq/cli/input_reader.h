// Input readers for mq-send: one message per line (newline stripped), per
// NUL-terminated record (-0), all of the input (--raw), or one JSON object
// per line (--json: body|body_b64, key, tag, props). Memory is bounded by
// max_item: a longer item is reported as an error and skipped.
//
// Not thread-safe; reads the fd directly (no stdio).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "storage/record.h"
#include "util/status.h"

namespace mq::cli {

enum class InputMode { lines, nul, raw, json };

struct InputItem {
  uint64_t line = 0;                // 1-based line (record) number
  Status error;                     // malformed: report, do not send
  std::string body;
  std::optional<std::string> key;   // set by --json lines that carry it
  std::optional<std::string> tag;
  std::optional<storage::Properties> props;
  // Where a record printed by --format json was stored (its topic, queue,
  // offset and id fields; mq-replay -i records them as provenance). Fields of
  // another type are ignored, as mq-send ignores these fields altogether.
  struct Origin {
    std::optional<std::string> topic, id;
    std::optional<uint64_t> queue, offset;
  } origin;
};

// Parses one --json line into item (body/key/tag/props, origin). The message has no
// line prefix: "invalid JSON: ...", "body_b64 is not valid base64: ...".
Status parse_json_line(std::string_view line, InputItem& item);

class InputReader {
 public:
  // `name` is what read errors call the input ("cannot read NAME: ...").
  InputReader(int fd, InputMode mode, size_t max_item, std::string name = "standard input");

  // The next item (possibly one with an error set); false at the end of the
  // input or on a read error (then status() says which).
  bool next(InputItem& out);
  // True when next() would not block: a whole item is buffered, the input
  // is at its end, or the fd is readable now.
  bool ready();
  // Like ready(), waiting up to timeout_ms for the fd to become readable.
  bool wait_ready(int timeout_ms);
  const Status& status() const { return status_; }
  // Set when reading stopped because stop_requested() turned true.
  bool interrupted() const { return interrupted_; }

 private:
  // Reads more into buf_; false at EOF or error.
  bool fill();
  bool next_delimited(char delim, InputItem& out);

  int fd_;
  std::string name_;
  InputMode mode_;
  size_t max_item_;
  std::string buf_;
  size_t pos_ = 0;     // start of unconsumed data
  size_t scan_ = 0;    // no delimiter in [pos_, scan_)
  bool eof_ = false;
  bool done_ = false;  // raw: the one item was returned
  bool interrupted_ = false;
  uint64_t line_ = 0;
  Status status_;
};

}  // namespace mq::cli

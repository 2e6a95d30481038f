// Output formats for messages (mq-consume, mq-replay):
//   body      the body, then "\n" (or "\0" with -0)
//   json      one object per line: topic, broker, queue, offset, id, key, tag, props,
//             born, stored, reconsume, body (valid UTF-8) or body_b64
//   TEMPLATE  %t topic, %b broker, %q queue, %o offset, %i id, %k key, %T tag, %s body,
//             %p{NAME} a property, %% a percent sign; escapes \t \n \0 \\.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "storage/record.h"
#include "util/status.h"

namespace mq::cli {

class MessageFormat {
 public:
  // spec: "body", "json" or a template. nul: -0 (body format ends with NUL).
  static Result<MessageFormat> parse(std::string_view spec, bool nul);

  // Appends the formatted message to out; broker: the master the message came from
  // (json "broker", %b; empty: json leaves the field out).
  void append(const storage::RecordView& m, std::string_view broker, std::string& out) const;

 private:
  enum class Kind { body, json, templ };
  enum class Field { literal, topic, broker, queue, offset, id, key, tag, body, prop };
  struct Piece {
    Field field;
    std::string text;  // literal text or property name
  };
  Kind kind_ = Kind::body;
  char terminator_ = '\n';
  std::vector<Piece> pieces_;
};

// The json format of one message (no trailing newline); "broker" after "topic" unless empty.
void append_message_json(const storage::RecordView& m, std::string_view broker, std::string& out);

}  // namespace mq::cli

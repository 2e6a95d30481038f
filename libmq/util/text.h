// Text from the network made safe for one log line or error message.
#pragma once

#include <cstdio>
#include <string>
#include <string_view>

namespace mq {

// `s` with every byte outside printable ASCII (control characters such as a newline that
// would forge a second log line, and non-ASCII bytes) written as \xNN and a backslash as \\,
// cut to `max` bytes of input (then "...").
inline std::string printable(std::string_view s, size_t max = 64) {
  std::string out;
  bool cut = s.size() > max;
  if (cut) s = s.substr(0, max);
  out.reserve(s.size());
  for (unsigned char c : s) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      char b[5];
      std::snprintf(b, sizeof b, "\\x%02x", c);
      out += b;
    }
  }
  if (cut) out += "...";
  return out;
}

}  // namespace mq

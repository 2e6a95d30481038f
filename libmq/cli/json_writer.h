// Fast hand-written JSON output for the hot paths (mq-consume --format json):
// string escaping and UTF-8 validation. Output is accepted by any JSON parser
// (nlohmann's included), so mq-send --json reads it back.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace mq::cli {

// Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF.
bool is_valid_utf8(std::string_view s);

// Appends s as a quoted JSON string: '"' and '\\' escaped, control characters
// as \n \t ... or \u00XX. Invalid UTF-8 bytes become U+FFFD (callers that must
// keep bytes check is_valid_utf8 first and use base64).
void append_json_string(std::string& out, std::string_view s);

// Appends a JSON object key + ':' ("name":).
inline void append_json_key(std::string& out, std::string_view name) {
  append_json_string(out, name);
  out.push_back(':');
}

void append_json_uint(std::string& out, uint64_t v);

}  // namespace mq::cli

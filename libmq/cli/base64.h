// Strict base64 (RFC 4648, standard alphabet, '=' padding required). Used for
// binary bodies in JSON ("body_b64") in both directions.
#pragma once

#include <string>
#include <string_view>

#include "util/status.h"

namespace mq::cli {

void base64_encode(std::string_view in, std::string& out);  // appends
std::string base64_encode(std::string_view in);
// Rejects whitespace, characters outside the alphabet, missing or misplaced
// padding and non-zero trailing bits; the message says which.
Result<std::string> base64_decode(std::string_view in);

}  // namespace mq::cli

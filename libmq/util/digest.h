// SHA-256, HMAC-SHA-256, random bytes and a constant-time compare (OpenSSL's
// libcrypto), for authentication. Digests are raw bytes; hex() for display.
#pragma once

#include <string>
#include <string_view>

namespace mq {

std::string sha256(std::string_view data);                          // 32 bytes
std::string hmac_sha256(std::string_view key, std::string_view data);  // 32 bytes
// n bytes from the system's CSPRNG (aborts only if OpenSSL cannot seed itself).
std::string random_bytes(size_t n);
// Equal sizes and contents, in time independent of where they differ.
bool equal_secret(std::string_view a, std::string_view b);

std::string to_hex(std::string_view bytes);
// False when `hex` is not an even number of hex digits.
bool from_hex(std::string_view hex, std::string& out);

}  // namespace mq

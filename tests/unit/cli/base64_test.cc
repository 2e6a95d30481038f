#include <catch2/catch.hpp>

#include <string>

#include "cli/base64.h"

using mq::cli::base64_decode;
using mq::cli::base64_encode;

TEST_CASE("base64 encodes the RFC 4648 test vectors", "[cli]") {
  CHECK(base64_encode("") == "");
  CHECK(base64_encode("f") == "Zg==");
  CHECK(base64_encode("fo") == "Zm8=");
  CHECK(base64_encode("foo") == "Zm9v");
  CHECK(base64_encode("foob") == "Zm9vYg==");
  CHECK(base64_encode("fooba") == "Zm9vYmE=");
  CHECK(base64_encode("foobar") == "Zm9vYmFy");
}

TEST_CASE("base64 decodes what it encodes, every byte value included", "[cli]") {
  std::string all;
  for (int i = 0; i < 256; ++i) all.push_back(static_cast<char>(i));
  for (size_t len = 0; len <= all.size(); len += 37) {
    auto part = all.substr(0, len);
    auto back = base64_decode(base64_encode(part));
    REQUIRE(back);
    CHECK(*back == part);
  }
  CHECK(*base64_decode("Zm9vYmFy") == "foobar");
  CHECK(*base64_decode("Zg==") == "f");
  CHECK(*base64_decode("+/+/") == "\xfb\xff\xbf");
}

TEST_CASE("base64 rejects bad input strictly", "[cli]") {
  auto msg = [](std::string_view in) {
    auto r = base64_decode(in);
    REQUIRE_FALSE(r);
    return r.status().message();
  };
  CHECK(msg("Zg") == "length 2 is not a multiple of 4");
  CHECK(msg("Zm9v\n") == "length 5 is not a multiple of 4");
  CHECK(msg("Zm 9") == "invalid character at position 3");
  CHECK(msg("Zm9-") == "invalid character at position 4");
  CHECK(msg("Z===") == "misplaced padding at position 2");
  CHECK(msg("Zg==Zm9v") == "misplaced padding at position 3");
  CHECK(msg("Zh==") == "non-zero bits in the padding");
  CHECK(msg("Zm9=") == "non-zero bits in the padding");
}

#include <catch2/catch.hpp>

#include <string>

#include "util/crc32c.h"

TEST_CASE("crc32c matches the RFC 3720 check values", "[util]") {
  CHECK(mq::crc32c(std::string_view("123456789")) == 0xE3069283u);
  std::string zeros(32, '\0');
  CHECK(mq::crc32c(zeros) == 0x8A9136AAu);
  std::string ones(32, '\xff');
  CHECK(mq::crc32c(ones) == 0x62A8AB43u);
}

TEST_CASE("crc32c extends across split buffers", "[util]") {
  std::string s = "the quick brown fox jumps over the lazy dog, twice over";
  for (size_t cut = 0; cut <= s.size(); ++cut) {
    uint32_t a = mq::crc32c(s.data(), cut);
    CHECK(mq::crc32c_extend(a, s.data() + cut, s.size() - cut) == mq::crc32c(s));
  }
}

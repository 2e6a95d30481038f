#include "app/offset.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <set>

namespace fs = std::filesystem;
using mq::app::OffsetLine;

TEST_CASE("import TSV: good lines parsed with their line numbers, bad ones named", "[app][offset]") {
  std::vector<OffsetLine> lines;
  std::vector<std::string> errors;
  mq::app::parse_offset_tsv(
      "# exported\n"
      "g\tt\t127.0.0.1:9876\t0\t10\r\n"
      "\n"
      "g\tt\t127.0.0.1:9876\t1\n"
      "g\tt\t127.0.0.1:9876\t70000\t1\n"
      "g\t%RETRY%g\t127.0.0.1:9876\t0\t3",
      lines, errors);
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].topic == "t");
  CHECK(lines[0].offset == 10);
  CHECK(lines[0].line == 2);
  CHECK(lines[1].topic == "%RETRY%g");
  CHECK(lines[1].line == 6);
  REQUIRE(errors.size() == 2);
  CHECK(errors[0].rfind("line 4: expected 5 tab-separated fields", 0) == 0);
  CHECK(errors[1] == "line 5: invalid queue '70000'");
}

TEST_CASE("import TSV: a repeated line is dropped, two offsets for one queue are an error", "[app][offset]") {
  std::vector<OffsetLine> lines;
  std::vector<std::string> errors;
  mq::app::parse_offset_tsv(
      "g\tt\t127.0.0.1:9876\t0\t10\n"
      "g\tt\t127.0.0.1:9876\t1\t4\n"
      "g\tt\t127.0.0.1:9876\t0\t10\n"      // the same again: harmless
      "h\tt\t127.0.0.1:9876\t0\t7\n"       // another group's queue 0
      "g\tt\t127.0.0.1:9877\t0\t8\n"       // another broker's queue 0
      "g\tt\t127.0.0.1:9876\t0\t12\n",     // which one was meant?
      lines, errors);
  REQUIRE(lines.size() == 4);
  CHECK(lines[2].group == "h");
  CHECK(lines[3].broker == "127.0.0.1:9877");
  REQUIRE(errors.size() == 1);
  CHECK(errors[0] == "line 6: offset 12 for group g topic t queue 0 on 127.0.0.1:9876, but line 1 gives 10");
}

TEST_CASE("undo files: two resets in one millisecond get two files", "[app][offset]") {
  fs::path dir = fs::temp_directory_path() / ("mq-undo-test-" + std::to_string(::getpid()));
  fs::remove_all(dir);
  fs::create_directories(dir);
  std::set<std::string> names;
  for (int i = 0; i < 3; ++i) {
    auto p = mq::app::claim_undo_file(dir, "billing", 1764000000123);
    REQUIRE(p);
    CHECK(fs::exists(*p));
    names.insert(p->filename().string());
  }
  CHECK(names == std::set<std::string>{"reset-billing-1764000000123.tsv", "reset-billing-1764000000123-2.tsv",
                                       "reset-billing-1764000000123-3.tsv"});
  auto missing = mq::app::claim_undo_file(dir / "nope", "billing", 1);
  CHECK_FALSE(missing);
  fs::remove_all(dir);
}

TEST_CASE("reset --shift clamps to the queue's range and saturates instead of overflowing", "[app][offset]") {
  using mq::app::shift_offset;
  constexpr int64_t kMax = INT64_MAX, kMin = INT64_MIN;
  CHECK(shift_offset(3, 2, 0, 10) == 5);
  CHECK(shift_offset(3, -2, 0, 10) == 1);
  CHECK(shift_offset(3, 100, 0, 10) == 10);
  CHECK(shift_offset(3, -100, 0, 10) == 0);
  // 3 + (2^63 - 3) overflows int64: the end of the queue, not a wrap to its start
  CHECK(shift_offset(3, 9223372036854775805, 0, 10) == 10);
  CHECK(shift_offset(3, kMax, 0, 10) == 10);
  CHECK(shift_offset(kMax, kMax, 0, kMax) == kMax);
  CHECK(shift_offset(3, kMin, 0, 10) == 0);
  CHECK(shift_offset(-5, kMin, kMin, 10) == kMin);
  CHECK(shift_offset(5, kMin, 2, 10) == 2);
}

TEST_CASE("lag counts what a group can still consume, not what retention deleted", "[app]") {
  CHECK(mq::app::queue_lag(5, 0, 3000) == 2995);
  CHECK(mq::app::queue_lag(5, 2314, 3000) == 686);  // 0..2313 are gone
  CHECK(mq::app::queue_lag(3000, 2314, 3000) == 0);
  CHECK(mq::app::queue_lag(3100, 0, 3000) == 0);
  CHECK(mq::app::queue_lag(-1, 0, 3000) == -1);  // no committed offset
}

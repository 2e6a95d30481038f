#include <catch2/catch.hpp>

#include <cstdlib>
#include <ctime>
#include <string>

#include "util/parse.h"

using namespace mq;

namespace {

// Sets TZ for the scope of a test and restores it afterwards.
class ScopedTz {
 public:
  explicit ScopedTz(const char* tz) {
    const char* old = std::getenv("TZ");
    had_ = old != nullptr;
    if (had_) old_ = old;
    setenv("TZ", tz, 1);
    tzset();
  }
  ~ScopedTz() {
    if (had_) setenv("TZ", old_.c_str(), 1);
    else unsetenv("TZ");
    tzset();
  }

 private:
  bool had_ = false;
  std::string old_;
};

bool message_has(const Status& s, const std::string& part) { return s.message().find(part) != std::string::npos; }

}  // namespace

TEST_CASE("durations parse with every unit", "[util]") {
  CHECK(parse_duration("250ms")->count() == 250);
  CHECK(parse_duration("5s")->count() == 5000);
  CHECK(parse_duration("15m")->count() == 15 * 60'000);
  CHECK(parse_duration("2h")->count() == 2 * 3'600'000);
  CHECK(parse_duration("3d")->count() == 3 * 86'400'000LL);
  CHECK(parse_duration("0")->count() == 0);
}

TEST_CASE("bad durations are rejected with the reason", "[util]") {
  auto unit = parse_duration("5x");
  REQUIRE_FALSE(unit);
  CHECK(unit.status().code() == Code::invalid_argument);
  CHECK(message_has(unit.status(), "invalid duration '5x'"));
  CHECK(message_has(unit.status(), "unknown unit 'x'"));
  CHECK(message_has(parse_duration("").status(), "empty"));
  CHECK(message_has(parse_duration("-5s").status(), "expected a number first"));
  CHECK(message_has(parse_duration("10").status(), "missing unit"));
  CHECK(message_has(parse_duration("99999999999999999999s").status(), "out of range"));
  CHECK(message_has(parse_duration("9999999999999999d").status(), "too large"));
}

TEST_CASE("durations are at most 100 years, so they fit in nanoseconds past any clock's now", "[util]") {
  // 107000d fits in int64 milliseconds but not in the nanoseconds of a steady_timer.
  CHECK(parse_duration("36500d")->count() == 36500 * 86'400'000LL);
  CHECK(parse_duration("876000h")->count() == 36500 * 86'400'000LL);
  for (const char* text : {"36501d", "107000d", "1000000d", "876001h", "3153600001s", "3153600000001ms"}) {
    INFO(text);
    auto d = parse_duration(text);
    REQUIRE_FALSE(d);
    CHECK(d.status().code() == Code::invalid_argument);
    CHECK(message_has(d.status(), "too large (at most 36500d)"));
  }
  // The longest one still makes a time point of steady_clock and of system_clock.
  auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(kMaxDuration);
  CHECK(ns.count() > 0);
  CHECK(std::chrono::steady_clock::now().time_since_epoch() < std::chrono::nanoseconds::max() - ns);
  CHECK(std::chrono::system_clock::now().time_since_epoch() < std::chrono::nanoseconds::max() - ns);
}

TEST_CASE("sizes parse binary and decimal units", "[util]") {
  CHECK(*parse_size("512") == 512);
  CHECK(*parse_size("64KiB") == 64 * 1024);
  CHECK(*parse_size("4MiB") == 4u << 20);
  CHECK(*parse_size("1GiB") == 1ull << 30);
  CHECK(*parse_size("2MB") == 2'000'000);
  auto bad = parse_size("4XB");
  REQUIRE_FALSE(bad);
  CHECK(message_has(bad.status(), "invalid size '4XB'"));
  CHECK(message_has(bad.status(), "unknown unit 'XB'"));
  CHECK_FALSE(parse_size("MiB"));
  CHECK_FALSE(parse_size("99999999999GiB"));
}

TEST_CASE("RFC 3339 times parse in UTC and with offsets", "[util]") {
  const int64_t t = 1795600800000;  // 2026-11-25T10:00:00Z
  CHECK(*parse_time("2026-11-25T10:00:00Z", 0) == t);
  CHECK(*parse_time("2026-11-25t10:00:00z", 0) == t);
  CHECK(*parse_time("2026-11-25T12:00:00+02:00", 0) == t);
  CHECK(*parse_time("2026-11-25T05:30:00-04:30", 0) == t);
  CHECK(*parse_time("2026-11-25T10:00:00.250Z", 0) == t + 250);
  CHECK(*parse_time("2026-11-25T10:00:00.2Z", 0) == t + 200);
}

TEST_CASE("local times honour TZ", "[util]") {
  ScopedTz tz("Europe/Berlin");
  // November: CET = UTC+1.
  CHECK(*parse_time("2026-11-25 11:00", 0) == 1795600800000);
  CHECK(*parse_time("2026-11-25 11:00:30", 0) == 1795600830000);
  // July: CEST = UTC+2.
  CHECK(*parse_time("2026-07-01 12:00", 0) == *parse_time("2026-07-01T10:00:00Z", 0));
}

TEST_CASE("epoch and relative times parse", "[util]") {
  CHECK(*parse_time("@1764000000", 0) == 1764000000000);
  const int64_t now = 1795600800000;
  CHECK(*parse_time("-15m", now) == now - 15 * 60'000);
  CHECK(*parse_time("-2h", now) == now - 2 * 3'600'000);
}

TEST_CASE("bad times are rejected with the reason", "[util]") {
  CHECK(message_has(parse_time("", 0).status(), "empty"));
  CHECK(message_has(parse_time("@abc", 0).status(), "expected epoch seconds after '@'"));
  CHECK(message_has(parse_time("-15", 0).status(), "expected a duration after '-'"));
  CHECK(message_has(parse_time("-15", 0).status(), "digits alone count messages back"));
  CHECK(message_has(parse_time("-15x", 0).status(), "after '-': unknown unit 'x'"));
  CHECK(message_has(parse_time("-36501d", 0).status(), "after '-': too large (at most 36500d)"));
  CHECK_FALSE(message_has(parse_time("-x", 0).status(), "digits alone"));
  CHECK(message_has(parse_time("2026-13-01T00:00:00Z", 0).status(), "no such date"));
  CHECK(message_has(parse_time("2026-02-30T00:00:00Z", 0).status(), "no such date"));
  CHECK(message_has(parse_time("2026-11-25T25:00:00Z", 0).status(), "time of day out of range"));
  CHECK(message_has(parse_time("2026-11-25T10:00:00", 0).status(), "RFC 3339 needs 'Z' or an offset"));
  CHECK(message_has(parse_time("2026-11-25T10:00:00+2", 0).status(), "UTC offset"));
  CHECK(message_has(parse_time("2026-11-25T10:00:00Zjunk", 0).status(), "unexpected text"));
  CHECK(message_has(parse_time("yesterday", 0).status(), "expected YYYY-MM-DD"));
  CHECK(parse_time("nonsense", 0).status().code() == Code::invalid_argument);
}

TEST_CASE("offsets and times are told apart for --from", "[util]") {
  CHECK_FALSE(looks_like_time("12345"));
  CHECK(looks_like_time("@1764000000"));
  CHECK(looks_like_time("-15m"));
  CHECK(looks_like_time("2026-11-25 10:00"));
  CHECK(looks_like_time("2026-11-25T10:00:00Z"));
}

TEST_CASE("a back count is a minus and digits only: -15m, -, 12 and -1x are not counts", "[util]") {
  CHECK(parse_back_count("-10") == std::optional<uint64_t>(10));
  CHECK(parse_back_count("-0") == std::optional<uint64_t>(0));
  CHECK(parse_back_count("-18446744073709551615") == std::optional<uint64_t>(UINT64_MAX));
  CHECK_FALSE(parse_back_count("-18446744073709551616"));  // overflow: not silently clamped
  CHECK_FALSE(parse_back_count("-15m"));
  CHECK_FALSE(parse_back_count("-"));
  CHECK_FALSE(parse_back_count("12"));
  CHECK_FALSE(parse_back_count("-1x"));
  CHECK_FALSE(parse_back_count("--1"));
  CHECK_FALSE(parse_back_count(""));
}

TEST_CASE("format_time prints RFC 3339 UTC with milliseconds", "[util]") {
  CHECK(format_time(1795600800250) == "2026-11-25T10:00:00.250Z");
  CHECK(format_time(0) == "1970-01-01T00:00:00.000Z");
  CHECK(*parse_time(format_time(1795600812345), 0) == 1795600812345);
}

TEST_CASE("topic names follow the rule and reserved prefixes", "[util]") {
  CHECK(validate_topic("orders.v1_eu-west"));
  CHECK(validate_topic(std::string(127, 'a')));
  CHECK(message_has(validate_topic(std::string(128, 'a')), "longer than 127"));
  CHECK(message_has(validate_topic(""), "empty"));
  CHECK(message_has(validate_topic("a b"), "only letters, digits"));
  CHECK(message_has(validate_topic("."), "are not names"));
  CHECK(message_has(validate_topic(".."), "are not names"));
  CHECK(message_has(validate_topic("%RETRY%..", true), "are not names"));
  CHECK(validate_topic("..a"));
  CHECK(message_has(validate_topic("a/b"), "only letters, digits"));
  CHECK(message_has(validate_topic("%RETRY%g"), "reserved"));
  CHECK(validate_topic("%RETRY%g", true));
  CHECK(validate_topic("%DLQ%g", true));
  CHECK_FALSE(validate_topic("%FOO%g", true));
  CHECK_FALSE(validate_topic("%DLQ%", true));
}

TEST_CASE("plain integers parse and name what was expected", "[util]") {
  CHECK(*parse_uint("42", "offset") == 42);
  auto bad = parse_uint("-1", "offset");
  REQUIRE_FALSE(bad);
  CHECK(bad.status().message() == "invalid offset '-1': expected a non-negative integer");
  CHECK_FALSE(parse_uint("", "offset"));
  CHECK_FALSE(parse_uint("1 ", "offset"));
}

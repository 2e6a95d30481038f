// Value parsers of util/parse.h: durations, sizes, times, integers, topic and
// group names. The first byte picks the parser; accepted values must satisfy
// what the parser promises.
#include <cstring>

#include "fuzz_util.h"
#include "util/parse.h"

using namespace mq;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  fuzz::Steer steer(fuzz::as_view(data, size));
  uint8_t sel = steer.u8();
  std::string_view t = steer.rest();
  constexpr int64_t kNow = 1764000000000;  // 2025-11-24T16:00:00Z
  switch (sel % 6) {
    case 0: {
      auto d = parse_duration(t);
      if (d) {
        MQ_FUZZ_CHECK(d->count() >= 0, "negative duration {}", d->count());
        (void)format_duration(*d);
        // The same amount in milliseconds parses to the same value.
        auto again = parse_duration(fmt::format("{}ms", d->count()));
        MQ_FUZZ_CHECK(again && *again == *d, "{} vs {}ms", t, d->count());
      } else {
        MQ_FUZZ_CHECK(!d.status().message().empty(), "error without a message");
      }
      break;
    }
    case 1: {
      auto s = parse_size(t);
      if (s) {
        auto again = parse_size(std::to_string(*s));
        MQ_FUZZ_CHECK(again && *again == *s, "size {} vs {}", t, *s);
      }
      break;
    }
    case 2: {
      bool looks = looks_like_time(t);
      auto ms = parse_time(t, kNow);
      if (ms) {
        MQ_FUZZ_CHECK(looks, "'{}' parses as a time but does not look like one", t);
        std::string text = format_time(*ms);
        // Printed times are RFC 3339 (years 0000-9999) and parse back; "@N" and "-DURATION"
        // reach further (printed with more digits or a sign).
        constexpr int64_t kMin = -62167219200000, kMax = 253402300799999;
        if (*ms >= kMin && *ms <= kMax) {
          auto back = parse_time(text, kNow);
          MQ_FUZZ_CHECK(back && *back == *ms, "{} -> {} -> {} -> {}", t, *ms, text, back ? *back : -1);
        }
      }
      break;
    }
    case 3: {
      auto u = parse_uint(t, "value");
      if (u) MQ_FUZZ_CHECK(std::to_string(*u) == t || (t.size() > 1 && t[0] == '0'), "'{}' -> {}", t, *u);
      break;
    }
    case 4: {
      for (bool reserved : {false, true}) {
        Status st = validate_topic(t, reserved);
        if (st.is_ok()) MQ_FUZZ_CHECK(!t.empty() && t.size() <= 127, "topic of {} bytes accepted", t.size());
      }
      break;
    }
    case 5: {
      Status st = validate_group(t);
      if (st.is_ok()) MQ_FUZZ_CHECK(t.find('%') == std::string_view::npos, "reserved group name accepted");
      if (t.size() >= 8) {  // any stored time can be printed
        int64_t ms;
        std::memcpy(&ms, t.data(), 8);
        (void)format_time(ms);
      }
      break;
    }
  }
  return 0;
}

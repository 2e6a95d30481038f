#include "util/parse.h"

#include <charconv>
#include <ctime>
#include <limits>
#include <variant>

namespace mq {
namespace {

bool all_digits(std::string_view s) {
  if (s.empty()) return false;
  for (char c : s)
    if (c < '0' || c > '9') return false;
  return true;
}

bool to_u64(std::string_view s, uint64_t& v) {
  if (!all_digits(s)) return false;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  return ec == std::errc() && p == s.data() + s.size();
}

bool fixed_int(std::string_view s, size_t pos, size_t len, int& v) {
  if (pos + len > s.size()) return false;
  auto part = s.substr(pos, len);
  uint64_t u;
  if (!to_u64(part, u)) return false;
  v = static_cast<int>(u);
  return true;
}

int64_t days_from_civil(int y, unsigned m, unsigned d) {
  using namespace std::chrono;
  return sys_days{year{y} / month{m} / day{d}}.time_since_epoch().count();
}

bool valid_date(int y, int mo, int d) {
  using namespace std::chrono;
  return year_month_day{year{y}, month{static_cast<unsigned>(mo)}, day{static_cast<unsigned>(d)}}.ok();
}

}  // namespace

Result<uint64_t> parse_uint(std::string_view text, std::string_view what) {
  uint64_t v;
  if (!to_u64(text, v)) return Status::invalid(fmt::format("invalid {} '{}': expected a non-negative integer", what, text));
  return v;
}

namespace {

// The duration, or why `text` is none.
std::variant<Millis, std::string> duration_or_why(std::string_view text) {
  auto bad = [](std::string why) { return std::variant<Millis, std::string>(std::move(why)); };
  if (text.empty()) return bad("empty");
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return bad("expected a number first");
  uint64_t n;
  if (!to_u64(text.substr(0, i), n)) return bad("number out of range");
  auto unit = text.substr(i);
  uint64_t mult;
  if (unit == "ms") mult = 1;
  else if (unit == "s") mult = 1000;
  else if (unit == "m") mult = 60'000;
  else if (unit == "h") mult = 3'600'000;
  else if (unit == "d") mult = 86'400'000;
  else if (unit.empty() && n == 0) mult = 1;
  else if (unit.empty()) return bad("missing unit");
  else return bad(fmt::format("unknown unit '{}'", unit));
  // Divided, not multiplied: n * mult may not fit in 64 bits.
  if (n > static_cast<uint64_t>(kMaxDuration.count()) / mult) return bad("too large (at most 36500d)");
  return Millis(static_cast<int64_t>(n * mult));
}

}  // namespace

Result<Millis> parse_duration(std::string_view text) {
  auto r = duration_or_why(text);
  if (auto* why = std::get_if<std::string>(&r))
    return Status::invalid(fmt::format("invalid duration '{}': {} (examples: 250ms, 5s, 15m, 2h, 3d)", text, *why));
  return std::get<Millis>(r);
}

Result<uint64_t> parse_size(std::string_view text) {
  auto bad = [&](std::string_view why) {
    return Status::invalid(fmt::format("invalid size '{}': {} (examples: 512, 64KiB, 4MiB, 1GiB)", text, why));
  };
  if (text.empty()) return bad("empty");
  size_t i = 0;
  while (i < text.size() && text[i] >= '0' && text[i] <= '9') ++i;
  if (i == 0) return bad("expected a number first");
  uint64_t n;
  if (!to_u64(text.substr(0, i), n)) return bad("number out of range");
  auto unit = text.substr(i);
  uint64_t mult;
  if (unit.empty() || unit == "B") mult = 1;
  else if (unit == "KiB" || unit == "k" || unit == "K") mult = 1ull << 10;
  else if (unit == "MiB" || unit == "M") mult = 1ull << 20;
  else if (unit == "GiB" || unit == "G") mult = 1ull << 30;
  else if (unit == "TiB" || unit == "T") mult = 1ull << 40;
  else if (unit == "KB" || unit == "kB") mult = 1000;
  else if (unit == "MB") mult = 1000'000;
  else if (unit == "GB") mult = 1000'000'000;
  else return bad(fmt::format("unknown unit '{}'", unit));
  if (n > std::numeric_limits<uint64_t>::max() / mult) return bad("too large");
  return n * mult;
}

bool looks_like_time(std::string_view t) {
  if (t.empty()) return false;
  if (t[0] == '@' || t[0] == '-') return true;
  return t.find('-') != std::string_view::npos || t.find(':') != std::string_view::npos;
}

std::optional<uint64_t> parse_back_count(std::string_view t) {
  uint64_t n;
  if (t.size() < 2 || t[0] != '-' || !to_u64(t.substr(1), n)) return std::nullopt;
  return n;
}

Result<int64_t> parse_time(std::string_view text, int64_t now) {
  auto bad = [&](std::string_view why) {
    return Status::invalid(fmt::format(
        "invalid time '{}': {} (examples: 2026-11-24T10:00:00Z, '2026-11-24 10:00', @1764000000, -15m)",
        text, why));
  };
  if (text.empty()) return bad("empty");
  if (text[0] == '@') {
    uint64_t s;
    if (!to_u64(text.substr(1), s) || s > 1'000'000'000'000ull) return bad("expected epoch seconds after '@'");
    return static_cast<int64_t>(s) * 1000;
  }
  if (text[0] == '-') {
    auto d = duration_or_why(text.substr(1));
    if (auto* why = std::get_if<std::string>(&d)) {
      auto rest = text.substr(1);
      bool number_first = !rest.empty() && rest[0] >= '0' && rest[0] <= '9';
      bool digits_only = number_first && rest.find_first_not_of("0123456789") == std::string_view::npos;
      // (Digits alone reach here in --from and --until only when they overflow a count.)
      return bad(digits_only     ? "expected a duration after '-' (in --from and --until, digits alone count "
                                   "messages back: -15, at most 18446744073709551615)"
                 : number_first ? fmt::format("after '-': {}", *why)
                                : "expected a duration after '-'");
    }
    return now - std::get<Millis>(d).count();
  }
  int y, mo, d, h = 0, mi = 0, s = 0;
  if (!fixed_int(text, 0, 4, y) || text.size() < 10 || text[4] != '-' || !fixed_int(text, 5, 2, mo) ||
      text[7] != '-' || !fixed_int(text, 8, 2, d))
    return bad("expected YYYY-MM-DD");
  if (mo < 1 || mo > 12 || !valid_date(y, mo, d)) return bad("no such date");
  size_t p = 10;
  bool local = true;
  int64_t frac_ms = 0;
  if (p < text.size()) {
    if (text[p] != 'T' && text[p] != 't' && text[p] != ' ') return bad("expected 'T' or ' ' after the date");
    ++p;
    if (!fixed_int(text, p, 2, h) || p + 2 >= text.size() + 0 || text.size() < p + 5 || text[p + 2] != ':' ||
        !fixed_int(text, p + 3, 2, mi))
      return bad("expected HH:MM");
    p += 5;
    if (p < text.size() && text[p] == ':') {
      if (!fixed_int(text, p + 1, 2, s)) return bad("expected seconds after ':'");
      p += 3;
      if (p < text.size() && text[p] == '.') {
        ++p;
        int digits = 0;
        int64_t scale = 100;
        while (p < text.size() && text[p] >= '0' && text[p] <= '9') {
          if (digits < 3) frac_ms += (text[p] - '0') * scale;
          scale /= 10;
          ++digits;
          ++p;
        }
        if (digits == 0) return bad("expected digits after '.'");
      }
    }
    if (h > 23 || mi > 59 || s > 60) return bad("time of day out of range");
  }
  int64_t offset_min = 0;
  if (p < text.size()) {
    local = false;
    if (text[p] == 'Z' || text[p] == 'z') {
      ++p;
    } else if (text[p] == '+' || text[p] == '-') {
      int oh, om;
      if (text.size() < p + 6 || !fixed_int(text, p + 1, 2, oh) || text[p + 3] != ':' || !fixed_int(text, p + 4, 2, om))
        return bad("expected a UTC offset like +02:00");
      offset_min = (oh * 60 + om) * (text[p] == '-' ? -1 : 1);
      p += 6;
    } else {
      return bad("unexpected text after the time");
    }
    if (p != text.size()) return bad("unexpected text after the offset");
  }
  if (local) {
    if (text.size() > 10 && (text[10] == 'T' || text[10] == 't')) return bad("RFC 3339 needs 'Z' or an offset");
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    tm.tm_isdst = -1;
    std::time_t t = std::mktime(&tm);
    if (t == static_cast<std::time_t>(-1)) return bad("not representable in local time");
    return static_cast<int64_t>(t) * 1000 + frac_ms;
  }
  int64_t days = days_from_civil(y, mo, d);
  int64_t secs = days * 86400 + h * 3600 + mi * 60 + s - offset_min * 60;
  return secs * 1000 + frac_ms;
}

static Status validate_name(std::string_view kind, std::string_view name, bool allow_reserved) {
  if (name.empty()) return Status::invalid(fmt::format("invalid {} name: empty", kind));
  if (name.size() > 127) return Status::invalid(fmt::format("invalid {} name '{}': longer than 127 characters", kind, name.substr(0, 40)));
  std::string_view body = name;
  if (name[0] == '%') {
    if (!allow_reserved) return Status::invalid(fmt::format("invalid {} name '{}': names beginning with '%' are reserved", kind, name));
    // %RETRY%group or %DLQ%group, and the broker's own %SCHEDULE% (delayed retries)
    if (name == "%SCHEDULE%") return Status::ok();
    auto second = name.find('%', 1);
    auto prefix = name.substr(0, second == std::string_view::npos ? 0 : second + 1);
    if (prefix != "%RETRY%" && prefix != "%DLQ%")
      return Status::invalid(fmt::format("invalid {} name '{}': unknown reserved prefix", kind, name));
    body = name.substr(prefix.size());
    if (body.empty()) return Status::invalid(fmt::format("invalid {} name '{}': missing group", kind, name));
  }
  if (body == "." || body == "..")
    return Status::invalid(fmt::format("invalid {} name '{}': '.' and '..' are not names", kind, name));
  for (char c : body) {
    bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok)
      return Status::invalid(fmt::format("invalid {} name '{}': only letters, digits, '.', '_' and '-' are allowed", kind, name));
  }
  return Status::ok();
}

Status validate_topic(std::string_view name, bool allow_reserved) { return validate_name("topic", name, allow_reserved); }
Status validate_group(std::string_view name) { return validate_name("group", name, false); }

std::string format_time(int64_t ms) {
  using namespace std::chrono;
  // Floor division by hand: floor<days>() of a time within a day of INT64_MIN overflows
  // (the start of that day is below the smallest millisecond count). Times come from the
  // wire and from disk, so every int64 must print.
  int64_t day_count = ms / 86'400'000, rem = ms % 86'400'000;
  if (rem < 0) {
    rem += 86'400'000;
    --day_count;
  }
  year_month_day ymd{sys_days{days{day_count}}};
  auto tod = hh_mm_ss<milliseconds>(milliseconds(rem));
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", static_cast<int>(ymd.year()),
                     static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()), tod.hours().count(),
                     tod.minutes().count(), tod.seconds().count(), tod.subseconds().count());
}

std::string format_duration(Millis d) {
  auto ms = d.count();
  if (ms < 1000) return fmt::format("{}ms", ms);
  if (ms < 60'000) return fmt::format("{:.1f}s", ms / 1000.0);
  // Two units, the second left out when it is 0 ("15m", "2h30m", "36500d").
  auto two = [](int64_t big, const char* bu, int64_t small, const char* su) {
    return small == 0 ? fmt::format("{}{}", big, bu) : fmt::format("{}{}{}{}", big, bu, small, su);
  };
  if (ms < 3'600'000) return two(ms / 60'000, "m", (ms % 60'000) / 1000, "s");
  if (ms < 86'400'000) return two(ms / 3'600'000, "h", (ms % 3'600'000) / 60'000, "m");
  return two(ms / 86'400'000, "d", (ms % 86'400'000) / 3'600'000, "h");
}

int64_t now_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

}  // namespace mq

// Parsers for the value syntaxes of SPEC's common conventions. Every error
// message names the bad text and what was expected.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/status.h"

namespace mq {

using Millis = std::chrono::milliseconds;

// The longest duration parse_duration takes: 100 years. Timeouts become
// steady_timer expiries and clock time points in nanoseconds (int64: 292 years
// after the clock's epoch; system_clock's is 1970), so longer ones would overflow there.
inline constexpr Millis kMaxDuration{36500LL * 86'400'000};

// "250ms", "5s", "15m", "2h", "3d" (also "0"). Rejects negatives, unknown units, and
// durations longer than kMaxDuration.
Result<Millis> parse_duration(std::string_view text);
// "512", "64KiB", "4MiB", "1GiB" (also KB/MB/GB as powers of 1000, and "k"/"M"/"G" = KiB/MiB/GiB).
Result<uint64_t> parse_size(std::string_view text);
// RFC 3339 ("2026-11-24T10:00:00Z", "...+02:00", fractional seconds), "2026-11-24 10:00[:SS]"
// (local time, honours TZ), "@1764000000" (epoch seconds), "-15m" (relative to now_ms).
// Returns milliseconds since the epoch.
Result<int64_t> parse_time(std::string_view text, int64_t now_ms);
// True when text looks like a time rather than an offset (for --from OFFSET|TIME).
bool looks_like_time(std::string_view text);
// "-N" with digits only (kcat's -o -N): N messages before the end of each
// queue. nullopt for anything else ("-15m" is a time, "42" an offset).
std::optional<uint64_t> parse_back_count(std::string_view text);
// Plain non-negative integer (no sign, no spaces).
Result<uint64_t> parse_uint(std::string_view text, std::string_view what);

// Topic names: [A-Za-z0-9._-]{1,127}. Reserved names (starting with '%') are
// accepted only with allow_reserved ("%RETRY%group", "%DLQ%group").
Status validate_topic(std::string_view name, bool allow_reserved = false);
// Group names follow the topic rule.
Status validate_group(std::string_view name);

// "2026-11-24T10:00:00.250Z" (UTC, milliseconds).
std::string format_time(int64_t ms);
std::string format_duration(Millis d);
int64_t now_ms();

}  // namespace mq

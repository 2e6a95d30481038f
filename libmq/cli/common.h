// What every program shares: common flags (-b -q -v --version), parsing with
// SPEC's exit codes, value parsers for CLI11 options, the logger, exit codes.
#pragma once

#include <CLI/CLI.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "util/parse.h"
#include "util/status.h"

namespace mq::cli {

inline constexpr const char* kDefaultBroker = "127.0.0.1:9876";

struct CommonOptions {
  std::string brokers = kDefaultBroker;  // -b / MQ_BROKER, comma-separated
  int verbose = 0;                       // -v, -vv
  bool quiet = false;                    // -q
  std::string credentials;               // --credentials FILE (cli/credentials.h)
  std::string tls_ca;                    // --tls-ca FILE / MQ_TLS_CA
};

// -b/--broker (env MQ_BROKER), --credentials, --tls-ca, -q, -v (repeatable), --version.
void add_common_flags(CLI::App& app, CommonOptions& opt);
// Only -q -v --version (for the broker, which has no -b).
void add_verbosity_flags(CLI::App& app, CommonOptions& opt);

// Parses argv. Returns the exit code when the program should stop now:
// 0 after --help/--version, 2 after a usage error (printed as
// "<program>: error: <reason>" plus a hint to --help). nullopt: carry on.
std::optional<int> parse(CLI::App& app, int argc, char** argv);
// Puts /dev/null (opened so that using it fails) on any of fds 0-2 that is closed (parse calls it).
void reserve_std_fds();
// The known option (of app or its subcommands) closest to a mistyped one, or "".
std::string closest_option(const CLI::App& app, std::string_view typed);

// Option callbacks that validate while parsing (bad values are usage errors,
// "FLAG: invalid duration '...': ...").
std::function<void(const std::string&)> to_duration(Millis& out, std::string flag);
// A duration that must be more than zero: a time limit of 0 would fail every
// request (or message) at once.
std::function<void(const std::string&)> to_timeout(Millis& out, std::string flag);
std::function<void(const std::string&)> to_size(uint64_t& out, std::string flag);

// Checks for numeric options, with messages a person can act on (CLI11's own
// print the whole double range): digits only, from min to max.
CLI::Validator whole_number(uint64_t min = 0, uint64_t max = UINT64_MAX);
// A decimal number >= 0 (e.g. --rate 0.5).
CLI::Validator non_negative_number();
// An integer with an optional sign, for --shift N.
std::function<void(const std::string&)> to_signed(std::optional<int64_t>& out, std::string flag);

// "a:1,b:2" -> {"a:1","b:2"}; each must be HOST:PORT.
Result<std::vector<std::string>> split_brokers(std::string_view list);

// 0 for ok, 2 for invalid_argument, 1 otherwise (SPEC's exit statuses).
int exit_code(const Status& s);
// Logs s's message as one error line (the logger adds "<program>: ") and
// returns s, for an app's `return cli::fail(s);`.
Status fail(Status s);

// One logger per process named after the program, stderr only. Clients: "%n: %v";
// the broker (with_time): time and level too. Colour only when stderr is a terminal
// and NO_COLOR is unset. quiet: errors only; verbose 1: debug; 2+: trace.
void setup_logger(const std::string& program, const CommonOptions& opt, bool with_time = false);
// For the broker's --log-level (trace debug info warn error off).
Status set_log_level(std::string_view level);
// --config may set log-level, quiet or verbose; the command line wins (as for every
// option): a -v or -q there drops a log level and the other of -v/-q that only the
// file gave. A --log-level on the command line still wins over -v and -q.
void command_line_verbosity_wins(int argc, char** argv, CommonOptions& common, std::string& log_level);

bool is_tty(int fd);
std::string version_string(std::string_view program);

}  // namespace mq::cli

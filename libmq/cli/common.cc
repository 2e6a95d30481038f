#include "cli/common.h"

#include <spdlog/sinks/ansicolor_sink.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <iostream>
#include <sstream>
#include <vector>

#include "cli/progress.h"
#include "net/channel.h"

#ifndef MQ_GIT_REV  // set for this file only (CMakeLists.txt)
#define MQ_GIT_REV "unknown"
#endif

namespace mq::cli {

std::string version_string(std::string_view program) {
  return fmt::format("{} {} ({}, built {} {})", program, MQ_VERSION, MQ_GIT_REV, __DATE__, __TIME__);
}

void add_verbosity_flags(CLI::App& app, CommonOptions& opt) {
  app.set_version_flag("--version", version_string(app.get_name()));
  app.add_flag("-q,--quiet", opt.quiet, "only report errors")->group("Common");
  app.add_flag_function(
         "-v,--verbose", [&opt](int64_t n) { opt.verbose = static_cast<int>(n); },
         "more diagnostics (-vv: trace)")
      ->group("Common");
}

void add_common_flags(CLI::App& app, CommonOptions& opt) {
  app.add_option("-b,--broker", opt.brokers, "brokers, HOST:PORT[,HOST:PORT...]")
      ->envname("MQ_BROKER")
      ->default_str(kDefaultBroker)
      ->check([](const std::string& v) -> std::string {
        auto r = split_brokers(v);
        return r ? std::string() : r.status().message();
      })
      ->group("Common");
  app.add_option("--credentials", opt.credentials,
                 "user and password file, mode 600 (else MQ_USER, MQ_PASSWORD)")
      ->group("Common");
  app.add_option("--tls-ca", opt.tls_ca, "connect with TLS, trusting brokers signed by this CA file")
      ->envname("MQ_TLS_CA")
      ->group("Common");
  add_verbosity_flags(app, opt);
}

namespace {

// Edit distance counting a swap of two neighbours as one edit (optimal string alignment),
// for "did you mean" hints: --exce is one edit from --exec (and two from --exit).
size_t edit_distance(std::string_view a, std::string_view b) {
  const size_t w = b.size() + 1;
  std::vector<size_t> d((a.size() + 1) * w);
  for (size_t i = 0; i <= a.size(); ++i) d[i * w] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[j] = j;
  for (size_t i = 1; i <= a.size(); ++i)
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t& cell = d[i * w + j];
      cell = std::min({d[(i - 1) * w + j] + 1, d[i * w + j - 1] + 1,
                       d[(i - 1) * w + j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1)});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1])
        cell = std::min(cell, d[(i - 2) * w + j - 2] + 1);
    }
  return d.back();
}

}  // namespace

void reserve_std_fds() {
  // A closed 0, 1 or 2 would be taken by the next file, socket or eventfd opened:
  // messages written "to stdout" would go into it. /dev/null holds the place,
  // opened the wrong way round so that using the closed stream still fails
  // (EBADF: "standard output is closed", "standard input ... is closed").
  for (int fd = 0; fd <= 2; ++fd) {
    if (::fcntl(fd, F_GETFD) != -1 || errno != EBADF) continue;
    int n = ::open("/dev/null", fd == 0 ? O_WRONLY : O_RDONLY);
    if (n >= 0 && n != fd) {
      ::dup2(n, fd);
      ::close(n);
    }
  }
}

namespace {

// Options whose empty value is a mistake (an unset shell variable: -g "$GROUP"),
// not "the default": '' would silently mean a tail instead of a group, the
// default data directory, "latest".
void refuse_empty_values(CLI::App& app) {
  static const char* const kNames[] = {"data",  "listen", "master", "ready-file", "group",    "from",
                                       "until", "exec",   "to",     "to-time",    "undo-dir", "dlq",
                                       "to-topic", "input", "topic", "format", "auth", "tls-cert", "tls-key",
                                       "delay-levels", "log-level"};
  CLI::Validator non_empty(
      [](std::string& v) -> std::string { return v.empty() ? "empty value" : std::string(); }, "", "non-empty");
  auto apply = [&](CLI::App& a) {
    for (CLI::Option* o : a.get_options())
      for (const char* n : kNames)
        if (o->check_lname(n)) o->check(non_empty);
  };
  apply(app);
  for (CLI::App* sub : app.get_subcommands([](CLI::App*) { return true; })) apply(*sub);
}

}  // namespace

std::optional<int> parse(CLI::App& app, int argc, char** argv) {
  reserve_std_fds();
  refuse_empty_values(app);
  try {
    app.parse(argc, argv);
    // An option both the program and its subcommand have (mq-offset --format), given to
    // each: one of them would win in silence.
    for (const CLI::App* sub : app.get_subcommands())
      for (const CLI::Option* o : sub->get_options())
        if (o->count() > 0 && o->get_envname().empty())
          for (auto& l : o->get_lnames())
            if (const CLI::Option* p = app.get_option_no_throw("--" + l); p && p->count() > 0)
              throw CLI::ArgumentMismatch("--" + l + ": At Most 1 required but received 2");
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {
      app.exit(e);  // prints help or version to stdout
      return 0;
    }
    std::string what = e.what();
    // CLI11 suggests nothing for unknown options; add the closest known one.
    std::string hint;
    std::vector<std::string> extras = app.remaining(/*recurse=*/true);  // in command-line order
    auto is_option = [](std::string_view w) { return w.size() > 1 && w[0] == '-'; };
    bool extras_error = dynamic_cast<const CLI::ExtrasError*>(&e) != nullptr;
    // A missing required option is checked before unknown ones: a mistyped option
    // (--topik) would be reported as "--topic is required", the real mistake unsaid.
    bool no_command = !app.get_subcommands([](const CLI::App*) { return true; }).empty() &&
                      app.get_subcommands().empty();  // one was required, none given
    // So is a value missing at the end (mq-send --bogus -t): the earlier unknown option first.
    bool missing_value = dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr &&
                         what.find(" missing") != std::string::npos;
    if ((dynamic_cast<const CLI::RequiredError*>(&e) != nullptr || missing_value) &&
        std::any_of(extras.begin(), extras.end(), is_option) && (!no_command || is_option(extras.front()))) {
      std::erase_if(extras, [&](const std::string& w) { return !is_option(w); });
      extras_error = true;
    }
    if (dynamic_cast<const CLI::FileError*>(&e) != nullptr) what = "--config: " + what;  // "F was not readable (missing?)"
    if (what.rfind("--broker: ", 0) == 0) {  // a bad value that came from the environment is named so
      bool typed = false;
      for (int i = 1; i < argc; ++i) {
        std::string_view a = argv[i];
        typed = typed || a == "-b" || a.rfind("--broker", 0) == 0 || (a.size() > 2 && a[0] == '-' && a[1] == 'b');
      }
      if (!typed && std::getenv("MQ_BROKER") != nullptr) what = "MQ_BROKER: " + what.substr(10);
    }
    if (auto in = what.find(" not in {"); in != std::string::npos && what.back() == '}' && what.find(": ") < in) {
      // CLI::IsMember's "--flush: maybe not in {sync,async}"
      auto colon = what.find(": ");
      std::string choices = what.substr(in + 9, what.size() - in - 10);
      std::replace(choices.begin(), choices.end(), ',', '|');
      what = fmt::format("{}: '{}' is not one of {}", what.substr(0, colon), what.substr(colon + 2, in - colon - 2),
                         choices);
    }
    if (dynamic_cast<const CLI::ArgumentMismatch*>(&e) != nullptr && what.find(": At Most 1 required") != std::string::npos)
      what = what.substr(0, what.find(": ")) + " is given more than once";  // "--topic: At Most 1 required but received 2"
    if (extras_error) {
      what = fmt::format("{} not expected: {}", extras.size() > 1 ? "arguments" : "argument",
                         fmt::join(extras, " "));
      for (const std::string& w : extras) {
        if (!hint.empty()) break;
        std::string_view word = w;
        if (is_option(word)) {
          hint = closest_option(app, word);
          if (hint == word.substr(0, word.find('='))) {
            // Known, but to another subcommand than the one given.
            std::string owners, given;
            for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
              if (sub->parsed()) given = sub->get_name();
              for (const CLI::Option* o : sub->get_options())
                if (o->check_lname(hint.substr(2))) owners += (owners.empty() ? "" : ", ") + sub->get_name();
            }
            what = fmt::format("{} is not an option of {}", hint, given.empty() ? app.get_name() : given);
            hint = owners.empty() ? "" : "it is one of " + owners + ";";
          } else if (!hint.empty()) {
            hint = "did you mean " + hint + "?";
          }
        }
      }
    } else if (dynamic_cast<const CLI::ConfigError*>(&e) != nullptr &&
               what.rfind("INI was not able to parse ", 0) == 0) {
      // A key of the --config file that is no option.
      std::string key = what.substr(std::string_view("INI was not able to parse ").size());
      if (key.find('.') != std::string::npos) {
        what = fmt::format("--config: '{}': sections are not read, write the options at the top level",
                           key.substr(0, key.find('.')));
      } else {
        what = fmt::format("--config: unknown option '{}'", key);
        std::string best = closest_option(app, "--" + key);
        if (!best.empty()) hint = "did you mean " + best.substr(2) + "?";
      }
    } else if (dynamic_cast<const CLI::ConversionError*>(&e) != nullptr) {
      // "Could not convert: --count = abc"
      auto eq = what.rfind(" = ");
      auto colon = what.find(": ");
      if (eq != std::string::npos && colon != std::string::npos && colon < eq)
        what = fmt::format("invalid {} '{}'", what.substr(colon + 2, eq - colon - 2), what.substr(eq + 3));
    } else if (no_command && app.remaining().empty()) {
      // CLI11's "A subcommand is required"
      std::string names;
      for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; }))
        names += (names.empty() ? "" : ", ") + sub->get_name();
      what = fmt::format("a command is required: {}", names);
    } else if (no_command && !app.remaining().empty()) {
      // A subcommand was required and a word that is none was given.
      std::string word = app.remaining().front(), names, best;
      size_t best_d = SIZE_MAX;
      for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) {
        names += (names.empty() ? "" : ", ") + sub->get_name();
        size_t d = edit_distance(word, sub->get_name());
        if (d < best_d) best_d = d, best = sub->get_name();
      }
      what = fmt::format("unknown command '{}' (commands: {})", word, names);
      if (best_d <= std::max<size_t>(2, word.size() / 3)) hint = "did you mean " + best + "?";
    }
    // One line, prefixed like every diagnostic.
    std::cerr << app.get_name() << ": error: " << what << " (" << (hint.empty() ? "" : hint + " ") << "see "
              << app.get_name() << " --help)\n";
    return 2;
  }
  return std::nullopt;
}

std::string closest_option(const CLI::App& app, std::string_view typed) {
  std::string_view bare = typed.substr(0, typed.find('='));
  auto distance = edit_distance;
  std::string best;
  size_t best_d = std::max<size_t>(2, bare.size() / 3) + 1;
  auto consider = [&](const CLI::App& a) {
    for (const CLI::Option* o : a.get_options()) {
      for (auto& l : o->get_lnames()) {
        std::string name = "--" + l;
        size_t d = distance(bare, name);
        if (d < best_d) best_d = d, best = name;
      }
    }
  };
  consider(app);
  for (const CLI::App* sub : app.get_subcommands([](const CLI::App*) { return true; })) consider(*sub);
  return best;
}

std::function<void(const std::string&)> to_duration(Millis& out, std::string flag) {
  return [&out, flag = std::move(flag)](const std::string& v) {
    auto r = parse_duration(v);
    if (!r) throw CLI::ValidationError(fmt::format("{}: {}", flag, r.status().message()));
    out = *r;
  };
}

CLI::Validator whole_number(uint64_t min, uint64_t max) {
  return CLI::Validator(
      [min, max](std::string& v) -> std::string {
        bool digits = !v.empty() && std::all_of(v.begin(), v.end(), [](char c) { return c >= '0' && c <= '9'; });
        if (!digits) return fmt::format("'{}' is not a whole number", v);
        auto n = v.size() <= 20 ? parse_uint(v, "") : Result<uint64_t>(Status::invalid(""));
        if (!n || *n > max) return fmt::format("'{}' must be at most {}", v, max);
        if (*n < min) return fmt::format("'{}' must be at least {}", v, min);
        return {};
      },
      max != UINT64_MAX ? fmt::format("[{} - {}]", min, max) : min > 0 ? "POSITIVE" : "NONNEGATIVE",
      "whole number");
}

CLI::Validator non_negative_number() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        char* end = nullptr;
        errno = 0;
        double d = v.empty() ? -1 : std::strtod(v.c_str(), &end);
        if (v.empty() || *end != '\0' || errno != 0 || !std::isfinite(d))
          return fmt::format("'{}' is not a number", v);
        if (d < 0) return fmt::format("'{}' must be 0 or more", v);
        return {};
      },
      "NONNEGATIVE", "non-negative number");
}

std::function<void(const std::string&)> to_signed(std::optional<int64_t>& out, std::string flag) {
  return [&out, flag = std::move(flag)](const std::string& v) {
    std::string_view digits = v;
    bool neg = !digits.empty() && digits[0] == '-';
    if (!digits.empty() && (digits[0] == '-' || digits[0] == '+')) digits.remove_prefix(1);
    if (digits.empty() ||
        !std::all_of(digits.begin(), digits.end(), [](char c) { return c >= '0' && c <= '9'; }))
      throw CLI::ValidationError(fmt::format("invalid {} '{}': expected a whole number (e.g. 10 or -10)", flag, v));
    auto n = digits.size() > 19 ? Result<uint64_t>(Status::invalid("")) : parse_uint(digits, "");
    uint64_t most = neg ? static_cast<uint64_t>(INT64_MAX) + 1 : static_cast<uint64_t>(INT64_MAX);
    if (!n || *n > most)
      throw CLI::ValidationError(fmt::format("invalid {} '{}': out of range ({} to {})", flag, v, INT64_MIN, INT64_MAX));
    out = neg ? static_cast<int64_t>(0 - *n) : static_cast<int64_t>(*n);
  };
}

std::function<void(const std::string&)> to_timeout(Millis& out, std::string flag) {
  return [&out, flag = std::move(flag)](const std::string& v) {
    auto r = parse_duration(v);
    if (!r) throw CLI::ValidationError(fmt::format("{}: {}", flag, r.status().message()));
    if (r->count() <= 0)
      throw CLI::ValidationError(fmt::format("invalid {} '{}': must be more than 0", flag, v));
    out = *r;
  };
}

std::function<void(const std::string&)> to_size(uint64_t& out, std::string flag) {
  return [&out, flag = std::move(flag)](const std::string& v) {
    auto r = parse_size(v);
    if (!r) throw CLI::ValidationError(fmt::format("{}: {}", flag, r.status().message()));
    out = *r;
  };
}

Result<std::vector<std::string>> split_brokers(std::string_view list) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= list.size()) {
    size_t comma = list.find(',', start);
    if (comma == std::string_view::npos) comma = list.size();
    auto part = list.substr(start, comma - start);
    while (!part.empty() && part.front() == ' ') part.remove_prefix(1);
    while (!part.empty() && part.back() == ' ') part.remove_suffix(1);
    if (!part.empty()) {
      auto hp = net::split_host_port(part);
      if (!hp) return hp.status();
      out.emplace_back(part);
    }
    start = comma + 1;
  }
  if (out.empty()) return Status::invalid("no broker address given");
  return out;
}

int exit_code(const Status& s) {
  if (s.is_ok()) return 0;
  if (s.code() == Code::invalid_argument) return 2;
  return 1;
}

Status fail(Status s) {
  spdlog::error("{}", s.message());
  return s;
}

bool is_tty(int fd) { return ::isatty(fd) == 1; }

namespace {

// Erases a progress line (cli/progress.h) before each log line.
class ProgressAwareSink final : public spdlog::sinks::sink {
 public:
  explicit ProgressAwareSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    erase_progress_line();
    inner_->log(msg);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> f) override { inner_->set_formatter(std::move(f)); }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

void setup_logger(const std::string& program, const CommonOptions& opt, bool with_time) {
  auto color_sink = std::make_shared<spdlog::sinks::ansicolor_stderr_sink_mt>();
  const char* nc = std::getenv("NO_COLOR");
  bool color = is_tty(STDERR_FILENO) && !(nc && *nc);
  color_sink->set_color_mode(color ? spdlog::color_mode::always : spdlog::color_mode::never);
  auto sink = std::make_shared<ProgressAwareSink>(color_sink);
  auto logger = std::make_shared<spdlog::logger>(program, sink);
  logger->set_pattern(with_time ? "%Y-%m-%dT%H:%M:%S.%e %^%l%$ %n: %v" : "%n: %^%v%$");
  if (opt.quiet)
    logger->set_level(spdlog::level::err);
  else if (opt.verbose >= 2)
    logger->set_level(spdlog::level::trace);
  else if (opt.verbose == 1)
    logger->set_level(spdlog::level::debug);
  else
    logger->set_level(spdlog::level::info);
  logger->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(logger);
}

void command_line_verbosity_wins(int argc, char** argv, CommonOptions& common, std::string& log_level) {
  bool v = false, q = false, level = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view a = argv[i];
    if (a == "--") break;
    if (a == "--verbose") v = true;
    else if (a == "--quiet") q = true;
    else if (a == "--log-level" || a.rfind("--log-level=", 0) == 0) level = true;
    else if (a.size() > 1 && a[0] == '-' && a[1] != '-' && a.find_first_not_of("vq", 1) == std::string_view::npos) {
      v = v || a.find('v') != std::string_view::npos;
      q = q || a.find('q') != std::string_view::npos;
    }
  }
  if (level || (!v && !q)) return;
  log_level.clear();
  if (v && !q) common.quiet = false;
  if (q && !v) common.verbose = 0;
}

Status set_log_level(std::string_view level) {
  auto l = spdlog::level::from_str(std::string(level));
  if (l == spdlog::level::off && level != "off")
    return Status::invalid(fmt::format("invalid log level '{}': expected trace, debug, info, warn, error or off", level));
  spdlog::set_level(l);
  return Status::ok();
}

}  // namespace mq::cli

#include "cli/credentials.h"

#include <spdlog/fmt/fmt.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <optional>

#include "net/tls.h"
#include "protocol/messages.h"
#include "util/file.h"

namespace mq::cli {

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// The key of the MQ_PASSWORD read (and removed from the environment) with MQ_USER `user`.
struct TakenFromEnv {
  std::string user;
  std::string key;
};
std::optional<TakenFromEnv> taken_from_env;

// MQ_USER and the key of MQ_PASSWORD; an empty user when neither is set.
Result<std::pair<std::string, std::string>> env_credentials() {
  const char* u = std::getenv("MQ_USER");
  std::string user = u ? u : "";
  std::optional<std::string> password;
  if (char* p = std::getenv("MQ_PASSWORD")) {
    password = p;
    // Wiped in place first: unsetenv drops the pointer only, and the inherited block
    // stays readable in /proc/PID/environ (ps e) for the whole run.
    std::memset(p, 0, std::strlen(p));
    ::unsetenv("MQ_PASSWORD");
  }
  if (user.empty()) {
    if (password) return Status::invalid("MQ_PASSWORD is set but MQ_USER is not");
    return std::pair<std::string, std::string>{};
  }
  // Never echo the name: "alice s3cret" holds a password.
  if (auto why = user_name_problem(user); !why.empty())
    return Status::invalid(fmt::format("MQ_USER {}", why));
  // MQ_PASSWORD is gone after the first read: a later one finds MQ_USER alone and uses what
  // that read kept (mq-send connects again when its first contact fails).
  if (password) taken_from_env = TakenFromEnv{user, protocol::auth_key(*password)};
  else if (!taken_from_env || taken_from_env->user != user)
    return Status::invalid("MQ_USER is set but MQ_PASSWORD is not");
  return std::pair{std::move(user), taken_from_env->key};
}

}  // namespace

std::string_view user_name_problem(std::string_view name) {
  if (name.empty()) return "is empty";
  static_assert(kMaxUserName == 255, "say the new limit");
  if (name.size() > kMaxUserName) return "is longer than 255 bytes";
  for (unsigned char c : name)
    if (c == ' ' || (c >= '\t' && c <= '\r')) return "contains whitespace";
  for (unsigned char c : name)
    if (c < 0x20 || c == 0x7f) return "contains a control character";
  return "";
}

Result<std::pair<std::string, std::string>> read_credentials(const std::string& path) {
  struct stat st;
  // Each of these is a configuration error (exit 2), like a malformed file.
  if (::stat(path.c_str(), &st) != 0)
    return Status::invalid(Status::from_errno(fmt::format("--credentials {}", path), errno).message());
  if (!S_ISREG(st.st_mode)) return Status::invalid(fmt::format("--credentials {}: not a regular file", path));
  if (st.st_uid != ::geteuid()) return Status::invalid(fmt::format("--credentials {}: not owned by you", path));
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    return Status::invalid(fmt::format(
        "--credentials {}: others may read it (mode {:o}): chmod 600 it", path, st.st_mode & 0777));
  auto text = read_file(path);
  if (!text) return Status::invalid(fmt::format("--credentials {}: {}", path, text.status().message()));
  std::string user, password;
  bool have_password = false;
  std::string_view rest = *text;
  size_t lineno = 0;
  while (!rest.empty()) {
    ++lineno;
    size_t nl = rest.find('\n');
    std::string_view line = trim(rest.substr(0, nl));
    rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
    if (line.empty() || line.front() == '#') continue;
    size_t sp = line.find_first_of(" \t");
    std::string_view key = line.substr(0, sp);
    std::string_view value = sp == std::string_view::npos ? std::string_view() : trim(line.substr(sp));
    bool have_user = !user.empty();
    if ((key == "user" && have_user) || (key == "password" && have_password))
      return Status::invalid(fmt::format("--credentials {}:{}: a second '{}' line", path, lineno, key));
    if (key == "user") {
      user = value;
    } else if (key == "password") {
      password = value;
      have_password = true;
    } else {
      // Never echo the line: it may be a password.
      return Status::invalid(
          fmt::format("--credentials {}:{}: expected 'user NAME' or 'password SECRET'", path, lineno));
    }
  }
  if (user.empty()) return Status::invalid(fmt::format("--credentials {}: no 'user NAME' line", path));
  // Never echo the name. One with a blank is most likely a line of the broker's --auth file,
  // "user NAME PASSWORD": it would carry the password to the broker's log and ours.
  if (auto why = user_name_problem(user); !why.empty())
    return Status::invalid(fmt::format("--credentials {}: the user name {}{}", path, why,
                                       user.find_first_of(" \t") != std::string::npos
                                           ? " (is this the broker's --auth format?)"
                                           : ""));
  if (!have_password)
    return Status::invalid(fmt::format("--credentials {}: no 'password SECRET' line", path));
  return std::pair{std::move(user), std::move(password)};
}

Result<net::ClientSecurity> client_security(const CommonOptions& flags) {
  net::ClientSecurity sec;
  std::string ca = flags.tls_ca;
  if (ca.empty())
    if (const char* e = std::getenv("MQ_TLS_CA"); e && *e) ca = e;
  if (!ca.empty()) {
    auto ctx = net::client_tls_context(ca);
    if (!ctx) return ctx.status();
    sec.tls = std::move(*ctx);
  }
  std::string user, key;
  if (!flags.credentials.empty()) {
    ::unsetenv("MQ_PASSWORD");  // not used, and not for the commands we run either
    auto c = read_credentials(flags.credentials);
    if (!c) return c.status();
    user = std::move(c->first);
    key = protocol::auth_key(c->second);
  } else {
    auto c = env_credentials();
    if (!c) return c.status();
    user = std::move(c->first);
    key = std::move(c->second);
  }
  if (!user.empty()) {
    sec.user = std::move(user);
    sec.key = std::move(key);
  }
  return sec;
}

}  // namespace mq::cli

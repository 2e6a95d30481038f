// Access control: the --auth file (users, their password keys, permissions)
// and the per-connection sessions that prove who is on each connection.
//
// File format (mq-broker(1)): one statement per line, '#' starts a comment.
//   user NAME PASSWORD            (or sha256:HEX, the SHA-256 of the password)
//   allow WHO PERMISSION [PATTERN...]
// WHO is a user, '*' (any authenticated user) or 'anonymous' (connections
// that did not authenticate). PERMISSION is publish or subscribe (patterns
// name topics), consume or admin (patterns name groups), or replicate (no
// patterns: may act as a slave). Patterns are shell globs; none means '*'.
// Consuming in group G also covers its %RETRY%G and %DLQ%G topics; admin on
// G covers reading %DLQ%G.
//
// Threading: every member of Authorizer is thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "net/server.h"
#include "protocol/frame.h"
#include "util/log_limit.h"
#include "util/status.h"

namespace mq::broker {

// Failed auth attempts one connection may make; the last one's answer closes it.
inline constexpr int kMaxAuthFailures = 3;

enum class Permission : uint8_t { publish, subscribe, consume, admin, replicate };
std::string_view permission_name(Permission p);

inline constexpr std::string_view kAnonymous = "anonymous";

class AuthConfig {
 public:
  // Errors name the source and line: "users.auth:3: unknown permission 'pub'".
  static Result<AuthConfig> parse(std::string_view text, std::string_view source);
  // Refuses a file that others than its owner may read or write.
  static Result<AuthConfig> load(const std::string& path);

  // The key (protocol::auth_key) of a user; nullptr when there is no such user.
  const std::string* key(std::string_view user) const;
  // `user` is a name from the file, or kAnonymous.
  bool allowed(std::string_view user, Permission p, std::string_view resource) const;
  // Any rule at all for this user (or for '*' when authenticated)?
  bool has_rules(std::string_view user) const;
  size_t users() const { return keys_.size(); }

 private:
  struct Rule {
    std::string who;
    Permission perm;
    std::vector<std::string> patterns;
    size_t line = 0;  // of the file, for its errors
  };
  std::map<std::string, std::string, std::less<>> keys_;
  std::vector<Rule> rules_;
};

class Authorizer {
 public:
  // nullptr: no --auth, everything is allowed (and auth requests succeed).
  explicit Authorizer(std::shared_ptr<const AuthConfig> config);

  bool enabled() const { return config_ != nullptr; }
  // Handlers for auth_challenge and auth.
  void challenge(const protocol::Frame& f, const net::Responder& r);
  void authenticate(const protocol::Frame& f, const net::Responder& r);
  // Before a request's handler runs: ok, or permission_denied with a message
  // that names the user, the permission and the object. Sends are checked per
  // topic with may_publish() instead (the topics are inside the records).
  Status check(uint64_t connection, const protocol::Frame& f) const;
  Status may_publish(uint64_t connection, std::string_view topic) const;
  void connection_closed(uint64_t connection);

 private:
  struct Session {
    std::string nonce;
    std::string user;  // empty until authenticated
    int failures = 0;  // failed auth attempts on this connection
  };
  std::string user_of(uint64_t connection) const;  // kAnonymous when not authenticated
  Status need(const std::string& user, Permission p, std::string_view resource) const;
  Status need_group(const std::string& user, std::string_view group, bool admin_ok) const;
  Status need_topic(const std::string& user, std::string_view topic) const;
  // G for the bookkeeping group redrive.G of mq-replay --dlq G, else empty.
  static std::string_view redriven_group(std::string_view group);
  Status need_redrive(const std::string& user, std::string_view group) const;

  std::shared_ptr<const AuthConfig> config_;
  mutable std::mutex mu_;
  std::unordered_map<uint64_t, Session> sessions_;
  LogLimit failure_log_{1000};  // failed attempts: logged at most once a second
  std::atomic<uint64_t> failures_unlogged_{0};
};

}  // namespace mq::broker

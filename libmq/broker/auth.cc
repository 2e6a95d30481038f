#include "broker/auth.h"

#include <fnmatch.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>

#include <cerrno>

#include "protocol/group_messages.h"
#include "storage/record.h"
#include "protocol/messages.h"
#include "protocol/replication_messages.h"
#include "util/bytes.h"
#include "util/digest.h"
#include "util/file.h"
#include "util/text.h"

namespace mq::broker {

using protocol::Code;
using protocol::Type;

std::string_view permission_name(Permission p) {
  switch (p) {
    case Permission::publish: return "publish";
    case Permission::subscribe: return "subscribe";
    case Permission::consume: return "consume";
    case Permission::admin: return "admin";
    case Permission::replicate: return "replicate";
  }
  return "?";
}

namespace {

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && (line[i] == ' ' || line[i] == '\t')) ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t') ++i;
    if (i > start) out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool glob(const std::string& pattern, std::string_view name) {
  return fnmatch(pattern.c_str(), std::string(name).c_str(), 0) == 0;
}

std::string_view object_kind(Permission p) {
  return p == Permission::publish || p == Permission::subscribe ? "topic" : "group";
}

}  // namespace

Result<AuthConfig> AuthConfig::parse(std::string_view text, std::string_view source) {
  AuthConfig c;
  size_t lineno = 0;
  while (!text.empty()) {
    ++lineno;
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    // A comment starts with a '#' that begins a word (as in sh), so a password may hold one.
    for (size_t i = 0; i < line.size(); ++i)
      if (line[i] == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
        line = line.substr(0, i);
        break;
      }
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    auto w = words(line);
    if (w.empty()) continue;
    auto bad = [&](std::string_view why) {
      return Status::invalid(fmt::format("{}:{}: {}", source, lineno, why));
    };
    if (w[0] == "user") {
      if (w.size() != 3)
        return bad("expected: user NAME PASSWORD (or sha256:HEX; a password may not start with #)");
      if (w[1] == kAnonymous || w[1] == "*")
        return bad(fmt::format("'{}' cannot be a user name", w[1]));
      if (c.keys_.count(w[1])) return bad(fmt::format("user {} is defined twice", w[1]));
      std::string key;
      if (w[2].rfind("sha256:", 0) == 0) {
        if (!from_hex(w[2].substr(7), key) || key.size() != 32)
          return bad("sha256: must be followed by 64 hex digits");
      } else {
        key = protocol::auth_key(w[2]);
      }
      c.keys_.emplace(std::string(w[1]), std::move(key));
    } else if (w[0] == "allow") {
      if (w.size() < 3) return bad("expected: allow WHO PERMISSION [PATTERN...]");
      Rule r;
      r.who = std::string(w[1]);
      r.line = lineno;
      static constexpr Permission kAll[] = {Permission::publish, Permission::subscribe,
                                            Permission::consume, Permission::admin,
                                            Permission::replicate};
      bool found = false;
      for (auto p : kAll)
        if (permission_name(p) == w[2]) r.perm = p, found = true;
      if (!found)
        return bad(fmt::format(
            "unknown permission '{}': expected publish, subscribe, consume, admin or replicate", w[2]));
      for (size_t i = 3; i < w.size(); ++i) r.patterns.emplace_back(w[i]);
      if (r.perm == Permission::replicate && !r.patterns.empty())
        return bad("replicate takes no patterns");
      if (r.patterns.empty()) r.patterns.emplace_back("*");
      c.rules_.push_back(std::move(r));
    } else {
      return bad(fmt::format("unknown statement '{}': expected user or allow", w[0]));
    }
  }
  for (auto& r : c.rules_)
    if (r.who != "*" && r.who != kAnonymous && !c.keys_.count(r.who))
      return Status::invalid(fmt::format("{}:{}: allow names user {}, who has no 'user' line", source, r.line, r.who));
  return c;
}

Result<AuthConfig> AuthConfig::load(const std::string& path) {
  struct stat st;
  // Each of these is a configuration error (exit 2), like a malformed line.
  if (::stat(path.c_str(), &st) != 0)
    return Status::invalid(Status::from_errno(fmt::format("--auth {}", path), errno).message());
  if (!S_ISREG(st.st_mode)) return Status::invalid(fmt::format("--auth {}: not a regular file", path));
  if (st.st_mode & (S_IRWXG | S_IRWXO))
    return Status::invalid(fmt::format(
        "--auth {}: others may read or change it (mode {:o}): chmod 600 it", path, st.st_mode & 0777));
  auto text = read_file(path);
  if (!text) return Status::invalid(fmt::format("--auth {}: {}", path, text.status().message()));
  return parse(*text, path);
}

const std::string* AuthConfig::key(std::string_view user) const {
  auto it = keys_.find(user);
  return it == keys_.end() ? nullptr : &it->second;
}

bool AuthConfig::allowed(std::string_view user, Permission p, std::string_view resource) const {
  bool authenticated = user != kAnonymous;
  for (auto& r : rules_) {
    if (r.perm != p) continue;
    if (!(r.who == user || (authenticated && r.who == "*"))) continue;
    for (auto& pat : r.patterns)
      if (glob(pat, resource)) return true;
  }
  return false;
}

bool AuthConfig::has_rules(std::string_view user) const {
  bool authenticated = user != kAnonymous;
  for (auto& r : rules_)
    if (r.who == user || (authenticated && r.who == "*")) return true;
  return false;
}

// --- Authorizer ---

Authorizer::Authorizer(std::shared_ptr<const AuthConfig> config) : config_(std::move(config)) {}

void Authorizer::challenge(const protocol::Frame& f, const net::Responder& r) {
  if (!f.payload.empty()) return r.refuse(Code::bad_request, "auth_challenge request: payload must be empty");
  protocol::AuthChallengeResponse resp;
  resp.nonce = random_bytes(32);
  resp.required = enabled();
  if (enabled()) {  // without --auth nothing is checked and nothing is kept per connection
    std::lock_guard lock(mu_);
    sessions_[r.connection_id()].nonce = resp.nonce;
  }
  std::string out;
  resp.encode(out);
  r.reply(Code::ok, std::move(out));
}

void Authorizer::authenticate(const protocol::Frame& f, const net::Responder& r) {
  protocol::AuthRequest req;
  if (!req.decode(f.payload)) return r.refuse(Code::bad_request, "auth request: malformed payload");
  if (!enabled()) return r.reply(Code::ok, {});
  std::string nonce;
  {
    std::lock_guard lock(mu_);
    auto it = sessions_.find(r.connection_id());
    if (it != sessions_.end()) {
      nonce = std::move(it->second.nonce);
      it->second.nonce.clear();  // one proof per challenge: no replays
    }
  }
  const std::string* key = config_->key(req.user);
  // Same answer for an unknown user and a wrong password: no user enumeration.
  if (nonce.empty() || key == nullptr ||
      !equal_secret(protocol::auth_proof(*key, req.user, nonce), req.proof)) {
    // The name comes from anyone who can connect: escaped (a newline would forge a log
    // line), and the log takes at most one failure a second (with how many it skipped).
    std::string who = printable(req.user);
    if (failure_log_.due()) {
      uint64_t skipped = failures_unlogged_.exchange(0);
      spdlog::warn("authentication failed for user '{}' from {}{}", who, r.peer(),
                   skipped ? fmt::format(" ({} more failures not logged in the last second)", skipped) : "");
    } else {
      failures_unlogged_.fetch_add(1);
    }
    int failures;
    {
      std::lock_guard lock(mu_);
      auto& sess = sessions_[r.connection_id()];
      failures = ++sess.failures;
      sess.user.clear();  // a failed login leaves the connection anonymous, not as who it was
    }
    std::string why = fmt::format("authentication failed for user {}: wrong user or password", who);
    // A client tries once per connection; guessing on one connection is cut short.
    if (failures >= kMaxAuthFailures)
      return r.refuse(Code::denied, fmt::format("{} ({} failed attempts: connection closed)", why, failures));
    return r.fail(Code::denied, why);
  }
  {
    std::lock_guard lock(mu_);
    sessions_[r.connection_id()].user = req.user;
  }
  spdlog::debug("{} authenticated as {}", r.peer(), printable(req.user));
  r.admit();
  r.reply(Code::ok, {});
}

void Authorizer::connection_closed(uint64_t connection) {
  if (!enabled()) return;
  std::lock_guard lock(mu_);
  sessions_.erase(connection);
}

std::string Authorizer::user_of(uint64_t connection) const {
  std::lock_guard lock(mu_);
  auto it = sessions_.find(connection);
  return it == sessions_.end() || it->second.user.empty() ? std::string(kAnonymous) : it->second.user;
}

Status Authorizer::need(const std::string& user, Permission p, std::string_view resource) const {
  if (config_->allowed(user, p, resource)) return Status::ok();
  if (user == kAnonymous)
    return Status::permission_denied(
        "this broker requires authentication: set MQ_USER and MQ_PASSWORD, or use --credentials FILE");
  if (p == Permission::replicate)
    return Status::permission_denied(fmt::format("user {} may not replicate from this broker", user));
  return Status::permission_denied(fmt::format("user {} may not {} {} {}", user, permission_name(p),
                                               object_kind(p), resource));
}

Status Authorizer::need_group(const std::string& user, std::string_view group, bool admin_ok) const {
  if (admin_ok && config_->allowed(user, Permission::admin, group)) return Status::ok();
  if (auto of = redriven_group(group); !of.empty() && !config_->allowed(user, Permission::consume, group))
    return need_redrive(user, of);
  auto st = need(user, Permission::consume, group);
  if (!st && admin_ok && user != kAnonymous)  // say that either would do
    return Status::permission_denied(fmt::format("user {} may not consume or admin group {}", user, group));
  return st;
}

std::string_view Authorizer::redriven_group(std::string_view group) {
  constexpr std::string_view kRedrive = "redrive.";  // client::redrive_group
  return group.size() > kRedrive.size() && group.rfind(kRedrive, 0) == 0 ? group.substr(kRedrive.size())
                                                                           : std::string_view();
}

Status Authorizer::need_redrive(const std::string& user, std::string_view group) const {
  // mq-replay --dlq G keeps its progress as the offsets of group redrive.G: whoever may read
  // G's dead letters (consume or admin on G) may keep and move them.
  return need_group(user, group, true);
}

Status Authorizer::need_topic(const std::string& user, std::string_view topic) const {
  // A group's own retry and dead-letter topics come with the group.
  constexpr std::string_view kRetry = "%RETRY%", kDlq = "%DLQ%";
  if (config_->allowed(user, Permission::subscribe, topic)) return Status::ok();
  if (topic.rfind(kRetry, 0) == 0) return need_group(user, topic.substr(kRetry.size()), false);
  if (topic.rfind(kDlq, 0) == 0) return need_group(user, topic.substr(kDlq.size()), true);
  return need(user, Permission::subscribe, topic);
}

Status Authorizer::may_publish(uint64_t connection, std::string_view topic) const {
  if (!enabled()) return Status::ok();
  return need(user_of(connection), Permission::publish, topic);
}

Status Authorizer::check(uint64_t connection, const protocol::Frame& f) const {
  if (!enabled()) return Status::ok();
  Type t = f.header.type;
  if (t == Type::hello || t == Type::auth_challenge || t == Type::auth || t == Type::send)
    return Status::ok();
  std::string user = user_of(connection);
  ByteReader in(f.payload);
  std::string name;  // the topic or group most requests start with
  switch (t) {
    case Type::pull:
    case Type::offset_for_time:
      if (!in.str16(name)) return Status::ok();  // malformed: the handler says so
      return need_topic(user, name);
    case Type::topic_info:
    case Type::replication_status:
      if (config_->has_rules(user)) return Status::ok();
      return need(user, Permission::subscribe, "*");
    case Type::heartbeat: {
      protocol::HeartbeatRequest hb;
      if (!hb.decode(f.payload)) return Status::ok();
      MQ_RETURN_IF_ERROR(need_group(user, hb.group, false));
      for (auto& topic : hb.topics) MQ_RETURN_IF_ERROR(need_topic(user, topic));
      return Status::ok();
    }
    case Type::send_back: {
      // The message sent back must be one the user could read: else a consumer of
      // any group could forge dead letters (or retries) for topics it may not touch,
      // which a re-drive would then publish.
      protocol::SendBackRequest sb;
      if (!sb.decode(f.payload)) return Status::ok();
      MQ_RETURN_IF_ERROR(need_group(user, sb.group, false));
      storage::RecordView rv;
      if (storage::decode_record(sb.record, rv) != storage::DecodeResult::ok) return Status::ok();
      MQ_RETURN_IF_ERROR(need_topic(user, rv.topic));
      // A retry carries the topic it came from, where it returns and a re-drive publishes:
      // the user must be able to read that one too.
      std::string_view origin;
      if (rv.topic.substr(0, 1) == "%" && rv.prop(protocol::kPropOriginTopic, origin))
        return need_topic(user, origin);
      return Status::ok();
    }
    case Type::commit_offsets:
    case Type::lock_queue:
      if (!in.str16(name)) return Status::ok();
      return need_group(user, name, false);
    case Type::query_offsets:
      if (!in.str16(name)) return Status::ok();
      return need_group(user, name, true);
    case Type::group_info:
      if (!f.payload.empty() && !in.str16(name)) return Status::ok();
      if (name.empty()) return need(user, Permission::admin, "*");
      return need_group(user, name, true);
    case Type::reset_offsets:
      if (!in.str16(name)) return Status::ok();
      if (auto of = redriven_group(name); !of.empty() && !config_->allowed(user, Permission::admin, name))
        return need_redrive(user, of);
      return need(user, Permission::admin, name);
    case Type::replicate:
    case Type::replica_ack:
    case Type::sync_offsets:
      return need(user, Permission::replicate, "");
    default:
      return Status::ok();
  }
}

}  // namespace mq::broker

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "broker/auth.h"
#include "broker/broker.h"
#include "broker/topics.h"
#include "net/channel.h"
#include "net/server.h"
#include "net/tls.h"
#include "protocol/group_messages.h"
#include "storage/store_test_util.h"
#include "protocol/message_id.h"
#include "protocol/messages.h"
#include "storage/message_store.h"
#include "storage/record.h"
#include "util/bytes.h"
#include "util/digest.h"
#include "served_broker.h"

using mq::broker::AuthConfig;
using mq::broker::Permission;
using mq::protocol::Code;
using mq::protocol::Frame;
using mq::protocol::Type;
using namespace std::chrono_literals;
namespace fs = std::filesystem;

namespace {

const char* kAuthFile = R"(# test users
user alice apple
user bob sha256:b493d48364afe44d11c0165cf470a4164d1e2609911ef998be868d46ade3de4e  # sha256 of "banana"
user rep replica-secret
allow alice publish orders orders.*
allow alice subscribe orders
allow alice consume billing
allow bob admin billing
allow * subscribe public.*
allow anonymous subscribe open
allow rep replicate
)";

AuthConfig config() {
  auto c = AuthConfig::parse(kAuthFile, "test.auth");
  INFO((c ? "" : c.status().message()));
  REQUIRE(c);
  return std::move(*c);
}

}  // namespace

TEST_CASE("the auth file gives each user exactly the permissions it lists", "[broker][auth]") {
  auto c = config();
  CHECK(c.users() == 3);
  CHECK(c.allowed("alice", Permission::publish, "orders"));
  CHECK(c.allowed("alice", Permission::publish, "orders.eu"));
  CHECK_FALSE(c.allowed("alice", Permission::publish, "ordersX"));
  CHECK_FALSE(c.allowed("alice", Permission::subscribe, "orders.eu"));
  CHECK(c.allowed("alice", Permission::consume, "billing"));
  CHECK_FALSE(c.allowed("alice", Permission::admin, "billing"));
  CHECK(c.allowed("bob", Permission::admin, "billing"));
  CHECK_FALSE(c.allowed("bob", Permission::publish, "orders"));
  // '*' is every authenticated user, never an anonymous connection.
  CHECK(c.allowed("bob", Permission::subscribe, "public.news"));
  CHECK_FALSE(c.allowed("anonymous", Permission::subscribe, "public.news"));
  CHECK(c.allowed("anonymous", Permission::subscribe, "open"));
  CHECK(c.allowed("rep", Permission::replicate, ""));
  CHECK_FALSE(c.allowed("alice", Permission::replicate, ""));
  CHECK(*c.key("bob") == mq::sha256("banana"));
  CHECK(*c.key("alice") == mq::protocol::auth_key("apple"));
  CHECK(c.key("carol") == nullptr);
}

TEST_CASE("a # inside a password is part of it; one that starts a word starts a comment", "[broker][auth]") {
  auto c = AuthConfig::parse("# users\nuser alice Str0ng#Secret-2026 # the on-call account\n"
                             "user bob\tpw #x\nallow alice publish t#1 #not a pattern\n",
                             "f");
  REQUIRE(c);
  CHECK(*c->key("alice") == mq::protocol::auth_key("Str0ng#Secret-2026"));
  CHECK(*c->key("bob") == mq::protocol::auth_key("pw"));
  CHECK(c->allowed("alice", Permission::publish, "t#1"));
  CHECK_FALSE(c->allowed("alice", Permission::publish, "not"));
}

TEST_CASE("a bad auth file is refused with its line number", "[broker][auth]") {
  auto err = [](const char* text) {
    auto c = AuthConfig::parse(text, "f");
    REQUIRE_FALSE(c);
    CHECK(c.status().code() == mq::Code::invalid_argument);
    return c.status().message();
  };
  CHECK(err("user a x\nallow a pub t\n") ==
        "f:2: unknown permission 'pub': expected publish, subscribe, consume, admin or replicate");
  CHECK(err("user a\n") == "f:1: expected: user NAME PASSWORD (or sha256:HEX; a password may not start with #)");
  CHECK(err("user a #x\n") == "f:1: expected: user NAME PASSWORD (or sha256:HEX; a password may not start with #)");
  CHECK(err("user a x\nuser a y\n") == "f:2: user a is defined twice");
  CHECK(err("user a sha256:abc\n") == "f:1: sha256: must be followed by 64 hex digits");
  CHECK(err("allow carol publish t\n") == "f:1: allow names user carol, who has no 'user' line");
  CHECK(err("user a x\nallow a publish t\n\nallow zed publish y\n") == "f:4: allow names user zed, who has no 'user' line");
  CHECK(err("grant a publish\n") == "f:1: unknown statement 'grant': expected user or allow");
  CHECK(err("user anonymous x\n") == "f:1: 'anonymous' cannot be a user name");
  CHECK(err("user r x\nallow r replicate t\n") == "f:2: replicate takes no patterns");
}

TEST_CASE("an auth file others may read is refused", "[broker][auth]") {
  fs::path p = fs::temp_directory_path() / ("mq-auth-test-" + std::to_string(::getpid()));
  std::ofstream(p) << "user a x\n";
  ::chmod(p.c_str(), 0644);
  auto c = AuthConfig::load(p.string());
  REQUIRE_FALSE(c);
  CHECK(c.status().code() == mq::Code::invalid_argument);  // a configuration error: exit 2
  CHECK(c.status().message().find("chmod 600") != std::string::npos);
  ::chmod(p.c_str(), 0600);
  CHECK(AuthConfig::load(p.string()));
  fs::remove(p);
}

TEST_CASE("the proof depends on key, user and nonce", "[broker][auth]") {
  auto k = mq::protocol::auth_key("apple");
  auto p = mq::protocol::auth_proof(k, "alice", "nonce-1");
  CHECK(p.size() == 32);
  CHECK(p == mq::protocol::auth_proof(k, "alice", "nonce-1"));
  CHECK(p != mq::protocol::auth_proof(k, "alice", "nonce-2"));
  CHECK(p != mq::protocol::auth_proof(k, "alicf", "nonce-1"));
  CHECK(p != mq::protocol::auth_proof(mq::protocol::auth_key("apples"), "alice", "nonce-1"));
  CHECK(mq::to_hex(mq::sha256("abc")) ==
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

// --- end to end: a broker with --auth behind a real server and channels ---

namespace {

struct AuthFixture {
  mq::broker::test::ServedBroker sb{[](mq::broker::test::ServedBroker& b) {
    b.broker->set_auth(std::make_shared<const AuthConfig>(config()));
  }};
  mq::net::IoThread client;
  std::unique_ptr<mq::net::Server>& server = sb.server;

  std::shared_ptr<mq::net::Channel> channel(std::string user, std::string password) {
    mq::net::ChannelOptions o;
    o.security.user = std::move(user);
    o.security.key = mq::protocol::auth_key(password);
    return mq::net::Channel::create(client.io(), server->local_address(), o);
  }
};

std::string send_to(const std::string& topic) {
  mq::storage::Message m;
  m.topic = topic;
  m.id = mq::protocol::new_message_id();
  m.body = "x";
  std::string out;
  mq::ByteWriter(out).u32(1);
  mq::storage::encode_record(m, out);
  return out;
}

std::string with_topic(const std::string& topic) {
  mq::protocol::PullRequest p;
  p.topic = topic;
  std::string out;
  p.encode(out);
  return out;
}

std::string group_payload(const std::string& group) {
  std::string out;
  mq::ByteWriter(out).str16(group);
  return out;
}

std::pair<Code, std::string> ask(mq::net::Channel& ch, Type t, std::string payload) {
  auto r = ch.call(t, std::move(payload), 5000ms);
  if (!r) return {Code::internal, r.status().message()};
  return {r->header.status, mq::protocol::status_from_response(r->header.status, r->payload).message()};
}

}  // namespace

TEST_CASE("a broker with --auth checks every request against the user's permissions", "[broker][auth]") {
  AuthFixture fx;
  auto alice = fx.channel("alice", "apple");
  CHECK(ask(*alice, Type::send, send_to("orders")).first == Code::ok);
  CHECK(ask(*alice, Type::send, send_to("orders.eu")).first == Code::ok);
  auto denied = ask(*alice, Type::send, send_to("audit"));
  CHECK(denied.first == Code::denied);
  CHECK(denied.second == "user alice may not publish topic audit");
  CHECK(ask(*alice, Type::pull, with_topic("orders")).first == Code::ok);
  CHECK(ask(*alice, Type::pull, with_topic("orders.eu")).first == Code::denied);
  // consume billing covers its retry topic, not its admin operations.
  CHECK(ask(*alice, Type::pull, with_topic("%RETRY%billing")).first != Code::denied);
  CHECK(ask(*alice, Type::query_offsets, group_payload("billing") + std::string(2, '\0')).first != Code::denied);
  auto reset = ask(*alice, Type::reset_offsets, group_payload("billing"));
  CHECK(reset.first == Code::denied);
  CHECK(reset.second == "user alice may not admin group billing");
  CHECK(ask(*alice, Type::replicate, {}).second == "user alice may not replicate from this broker");
  // send_back: only a message of a topic alice may read, else she could forge dead letters
  // of any topic for a re-drive to publish
  auto send_back = [](const std::string& topic, std::string origin = {}) {
    mq::storage::Message m;
    m.topic = topic;
    if (!origin.empty()) m.set_prop(mq::protocol::kPropOriginTopic, origin);
    m.id = mq::protocol::new_message_id();
    m.body = "injected";
    mq::protocol::SendBackRequest sb;
    sb.group = "billing";
    sb.dead_letter_now = true;
    mq::storage::encode_record(m, sb.record);
    std::string out;
    sb.encode(out);
    return out;
  };
  auto forged = ask(*alice, Type::send_back, send_back("audit"));
  CHECK(forged.first == Code::denied);
  CHECK(forged.second == "user alice may not subscribe topic audit");
  CHECK(ask(*alice, Type::send_back, send_back("orders")).first != Code::denied);
  CHECK(ask(*alice, Type::send_back, send_back("%RETRY%billing")).first != Code::denied);
  // a retry carries the topic it came from (where it returns, where a re-drive publishes)
  CHECK(ask(*alice, Type::send_back, send_back("%RETRY%billing", "orders")).first != Code::denied);
  auto forged_origin = ask(*alice, Type::send_back, send_back("%RETRY%billing", "audit"));
  CHECK(forged_origin.first == Code::denied);
  CHECK(forged_origin.second == "user alice may not subscribe topic audit");

  auto bob = fx.channel("bob", "banana");
  CHECK(ask(*bob, Type::send, send_to("orders")).first == Code::denied);
  CHECK(ask(*bob, Type::reset_offsets, group_payload("billing")).first != Code::denied);
  CHECK(ask(*bob, Type::pull, with_topic("%DLQ%billing")).first != Code::denied);
  CHECK(ask(*bob, Type::commit_offsets, group_payload("billing")).first == Code::denied);
  CHECK(ask(*bob, Type::topic_info, {}).first == Code::ok);

  // mq-replay --dlq billing keeps its progress as group redrive.billing: whoever may read
  // billing's dead letters (consume or admin on billing) may read and move it
  auto redrive_query = group_payload("redrive.billing") + std::string(2, '\0');
  auto redrive_reset = [] {
    mq::protocol::ResetRequest req;
    req.group = "redrive.billing";
    req.dry_run = true;
    req.entries.push_back({{"%DLQ%billing", 0}, -1, 0});
    std::string out;
    req.encode(out);
    return out;
  }();
  for (auto* who : {alice.get(), bob.get()}) {
    CHECK(ask(*who, Type::query_offsets, redrive_query).first != Code::denied);
    CHECK(ask(*who, Type::reset_offsets, redrive_reset).first != Code::denied);
  }
  auto rep = fx.channel("rep", "replica-secret");
  auto no = ask(*rep, Type::reset_offsets, redrive_reset);
  CHECK(no.first == Code::denied);
  CHECK(no.second == "user rep may not consume or admin group billing");
  CHECK(ask(*rep, Type::query_offsets, redrive_query).first == Code::denied);
}

TEST_CASE("without credentials only what anonymous may do is allowed", "[broker][auth]") {
  AuthFixture fx;
  auto anon = mq::net::Channel::create(fx.client.io(), fx.server->local_address());
  CHECK(ask(*anon, Type::hello, {}).first == Code::ok);
  auto d = ask(*anon, Type::send, send_to("orders"));
  CHECK(d.first == Code::denied);
  CHECK(d.second.find("requires authentication") != std::string::npos);
  CHECK(ask(*anon, Type::pull, with_topic("public.x")).first == Code::denied);
  CHECK(ask(*anon, Type::pull, with_topic("open")).first != Code::denied);
}

TEST_CASE("wrong credentials fail every request with a clear error and no secret", "[broker][auth]") {
  AuthFixture fx;
  for (auto [user, pw] : {std::pair{"alice", "pear"}, std::pair{"mallory", "apple"}}) {
    auto ch = fx.channel(user, pw);
    auto r = ch->call(Type::hello, {}, 5000ms);
    REQUIRE_FALSE(r);
    CHECK(r.status().code() == mq::Code::permission_denied);
    CHECK(r.status().message().find(std::string("authentication failed for user ") + user) != std::string::npos);
    CHECK(r.status().message().find(pw) == std::string::npos);
  }
}

TEST_CASE("a proof cannot be replayed on another connection", "[broker][auth]") {
  AuthFixture fx;
  auto anon = mq::net::Channel::create(fx.client.io(), fx.server->local_address());
  auto ch = anon->call(Type::auth_challenge, {}, 5000ms);
  REQUIRE(ch);
  mq::protocol::AuthChallengeResponse c1;
  REQUIRE(c1.decode(ch->payload));
  CHECK(c1.required);
  mq::protocol::AuthRequest req{"alice", mq::protocol::auth_proof(mq::protocol::auth_key("apple"), "alice", c1.nonce)};
  std::string payload;
  req.encode(payload);
  CHECK(ask(*anon, Type::auth, payload).first == Code::ok);
  CHECK(ask(*anon, Type::send, send_to("orders")).first == Code::ok);
  // The same proof again (the nonce is spent) and on a new connection (another nonce): refused.
  CHECK(ask(*anon, Type::auth, payload).first == Code::denied);
  // A failed login leaves the connection anonymous, not logged in as before.
  CHECK(ask(*anon, Type::send, send_to("orders")).first == Code::denied);
  auto other = mq::net::Channel::create(fx.client.io(), fx.server->local_address());
  REQUIRE(other->call(Type::auth_challenge, {}, 5000ms));
  CHECK(ask(*other, Type::auth, payload).first == Code::denied);
}

TEST_CASE("guessing passwords on one connection is cut short, and names are escaped", "[broker][auth]") {
  AuthFixture fx;
  auto guesser = mq::net::Channel::create(fx.client.io(), fx.server->local_address());
  auto guess = [&](const std::string& user, const std::string& pw) {
    auto ch = guesser->call(Type::auth_challenge, {}, 5000ms);
    REQUIRE(ch);
    mq::protocol::AuthChallengeResponse c;
    REQUIRE(c.decode(ch->payload));
    mq::protocol::AuthRequest req{user, mq::protocol::auth_proof(mq::protocol::auth_key(pw), user, c.nonce)};
    std::string payload;
    req.encode(payload);
    return ask(*guesser, Type::auth, payload);
  };
  // a newline in the name would forge a second line in the broker's log
  auto first = guess("eve\n2026-12-01 info mq-broker: ops authenticated", "x");
  CHECK(first.first == Code::denied);
  CHECK(first.second ==
        "authentication failed for user eve\\x0a2026-12-01 info mq-broker: ops authenticated: wrong user or password");
  CHECK(guess("alice", "pear").second.find("connection closed") == std::string::npos);
  CHECK(mq::storage::test::eventually([&] { return fx.server->connections() == 1; }));
  auto third = guess("alice", "plum");
  CHECK(third.first == Code::denied);
  CHECK(third.second.find("(3 failed attempts: connection closed)") != std::string::npos);
  CHECK(mq::storage::test::eventually([&] { return fx.server->connections() == 0; }));
}

#include "cli/credentials.h"

#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdlib>
#include <string>

#include "protocol/messages.h"

using namespace mq;

namespace {

// MQ_USER and MQ_PASSWORD as given (nullptr: unset), MQ_TLS_CA unset; all three unset after.
class Env {
 public:
  Env(const char* user, const char* password) {
    ::unsetenv("MQ_TLS_CA");
    set("MQ_USER", user);
    set("MQ_PASSWORD", password);
  }
  ~Env() {
    ::unsetenv("MQ_USER");
    ::unsetenv("MQ_PASSWORD");
  }

 private:
  static void set(const char* name, const char* value) {
    if (value) ::setenv(name, value, 1);
    else ::unsetenv(name);
  }
};

}  // namespace

TEST_CASE("credentials from the environment are read once and kept for later calls", "[cli][credentials]") {
  Env env("alice", "s3cretA");
  cli::CommonOptions flags;
  auto first = cli::client_security(flags);
  REQUIRE(first);
  CHECK(first->user == "alice");
  CHECK(first->key == protocol::auth_key("s3cretA"));
  CHECK(std::getenv("MQ_PASSWORD") == nullptr);  // commands we start do not inherit it
  // mq-send connects again when its first contact fails: same credentials, no false error
  auto again = cli::client_security(flags);
  REQUIRE(again);
  CHECK(again->user == "alice");
  CHECK(again->key == protocol::auth_key("s3cretA"));
  // what was kept belongs to that MQ_USER only
  ::setenv("MQ_USER", "bob", 1);
  auto other = cli::client_security(flags);
  REQUIRE_FALSE(other);
  CHECK(other.status().code() == Code::invalid_argument);
  CHECK(other.status().message() == "MQ_USER is set but MQ_PASSWORD is not");
  // a new MQ_PASSWORD is read again
  ::setenv("MQ_USER", "alice", 1);
  ::setenv("MQ_PASSWORD", "n3w", 1);
  auto renewed = cli::client_security(flags);
  REQUIRE(renewed);
  CHECK(renewed->key == protocol::auth_key("n3w"));
}

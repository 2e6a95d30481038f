#include "cli/credentials.h"

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <tuple>

#include "protocol/messages.h"
#include "storage/store_test_util.h"

using namespace mq;

namespace {

using storage::test::TempDir;

// A mode 600 credentials file holding `text`.
std::string credentials_file(const TempDir& dir, const std::string& text) {
  std::string path = (dir.path() / "cred").string();
  std::ofstream(path, std::ios::trunc) << text;
  REQUIRE(::chmod(path.c_str(), 0600) == 0);
  return path;
}

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

TEST_CASE("credentials from the environment are read once and kept for later calls",
          "[cli][credentials]") {
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

TEST_CASE("MQ_USER with whitespace is refused without echoing it", "[cli][credentials]") {
  Env env("alice s3cretA", "s3cretA");
  auto sec = cli::client_security(cli::CommonOptions{});
  REQUIRE_FALSE(sec);
  CHECK(sec.status().code() == Code::invalid_argument);
  CHECK(sec.status().message() == "MQ_USER contains whitespace");
  CHECK(std::getenv("MQ_PASSWORD") == nullptr);
}

TEST_CASE("MQ_USER with a control character is refused", "[cli][credentials]") {
  Env env("alice\x1b[2J", "s3cretA");
  auto sec = cli::client_security(cli::CommonOptions{});
  REQUIRE_FALSE(sec);
  CHECK(sec.status().message() == "MQ_USER contains a control character");
}

TEST_CASE("a credentials file in the broker's --auth format is refused without echoing the password",
          "[cli][credentials]") {
  TempDir dir;
  std::string path = credentials_file(dir, "user alice s3cretA\npassword s3cretA\n");
  auto c = cli::read_credentials(path);
  REQUIRE_FALSE(c);
  CHECK(c.status().code() == Code::invalid_argument);
  CHECK(c.status().message() == "--credentials " + path +
                                     ": the user name contains whitespace (is this the broker's --auth format?)");
  CHECK(c.status().message().find("s3cretA") == std::string::npos);
  // client_security says the same (and so connects nowhere)
  Env env(nullptr, nullptr);
  cli::CommonOptions flags;
  flags.credentials = path;
  auto sec = cli::client_security(flags);
  REQUIRE_FALSE(sec);
  CHECK(sec.status().message() == c.status().message());
}

TEST_CASE("a credentials file's user name: control characters and length", "[cli][credentials]") {
  TempDir dir;
  // The error for a file naming `user` ("" when it is accepted), after "--credentials PATH: ".
  auto problem = [&](const std::string& user) {
    std::string path = credentials_file(dir, "user " + user + "\npassword pw\n");
    auto c = cli::read_credentials(path);
    return c ? std::string() : c.status().message().substr(path.size() + 16);
  };
  CHECK(problem("alice") == "");
  CHECK(problem("al\x01ice") == "the user name contains a control character");
  CHECK(problem("al\x7f" "ice") == "the user name contains a control character");
  CHECK(problem(std::string(255, 'a')) == "");
  CHECK(problem(std::string(256, 'a')) == "the user name is longer than 255 bytes");
  // inner tabs are whitespace too; blanks around the name are not part of it
  CHECK(problem("alice\tx") == "the user name contains whitespace (is this the broker's --auth format?)");
  CHECK(problem("  alice  ") == "");
}

TEST_CASE("user names: what is refused", "[cli][credentials]") {
  CHECK(cli::user_name_problem("alice") == "");
  CHECK(cli::user_name_problem("ali.ce-01@example.com") == "");
  CHECK(cli::user_name_problem("J\xc3\xbcrgen") == "");  // UTF-8 is fine
  CHECK(cli::user_name_problem("") == "is empty");
  CHECK(cli::user_name_problem("a b") == "contains whitespace");
  CHECK(cli::user_name_problem("a\nb") == "contains whitespace");
  CHECK(cli::user_name_problem("a\rb") == "contains whitespace");
  CHECK(cli::user_name_problem(std::string_view("a\0b", 3)) == "contains a control character");
  CHECK(cli::user_name_problem(std::string(cli::kMaxUserName, 'x')) == "");
  CHECK(cli::user_name_problem(std::string(cli::kMaxUserName + 1, 'x')) == "is longer than 255 bytes");
}

TEST_CASE("a directory given as the credentials file is named as such", "[cli][credentials]") {
  TempDir dir;
  REQUIRE(::chmod(dir.path().c_str(), 0700) == 0);
  auto r = mq::cli::read_credentials(dir.path().string());
  REQUIRE_FALSE(r);
  CHECK(r.status().message().find("not a regular file") != std::string::npos);
}

TEST_CASE("a credentials file with a second user or password line is refused with its line", "[cli][credentials]") {
  TempDir dir;
  for (auto [text, line, key] : {std::tuple{"user a\npassword p1\npassword p2\n", 3, "password"},
                                 std::tuple{"# who\nuser a\n\nuser b\npassword p\n", 4, "user"}}) {
    std::string path = credentials_file(dir, text);
    auto c = cli::read_credentials(path);
    REQUIRE_FALSE(c);
    CHECK(c.status().message() ==
          "--credentials " + path + ":" + std::to_string(line) + ": a second '" + key + "' line");
  }
  // one of each, comments and blank lines around them: read
  auto ok = cli::read_credentials(credentials_file(dir, "# for the bench\nuser a\n\npassword p q\n"));
  REQUIRE(ok);
  CHECK(ok->first == "a");
  CHECK(ok->second == "p q");  // the rest of the line, spaces and all
}

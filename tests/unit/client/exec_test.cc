#include <catch2/catch.hpp>

#include <chrono>

#include "client/exec.h"

using mq::Millis;
using mq::client::run_command;

TEST_CASE("exec passes the body on stdin and the environment", "[client]") {
  auto r = run_command("test \"$(cat)\" = 'hello body' && test \"$MQ_TOPIC\" = orders", "hello body",
                       {{"MQ_TOPIC", "orders"}}, Millis(5000));
  REQUIRE(r);
  CHECK(r->ok());
}

TEST_CASE("exec reports exit codes and signals", "[client]") {
  auto r = run_command("exit 65", "", {}, Millis(5000));
  REQUIRE(r);
  CHECK(r->exit_code == 65);
  CHECK_FALSE(r->ok());
  auto s = run_command("kill -9 $$", "", {}, Millis(5000));
  REQUIRE(s);
  CHECK(s->signal == 9);
}

TEST_CASE("exec terminates a command that runs past its timeout, children included", "[client]") {
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_command("sleep 30 & sleep 30; echo never", "", {}, Millis(300));
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(r);
  CHECK(r->timed_out);
  CHECK_FALSE(r->ok());
  CHECK(took < std::chrono::seconds(5));
}

TEST_CASE("exec does not hang when the command ignores a large body", "[client]") {
  std::string big(1 << 20, 'x');
  auto r = run_command("true", big, {}, Millis(5000));
  REQUIRE(r);
  CHECK(r->ok());
}

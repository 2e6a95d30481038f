#include <catch2/catch.hpp>

#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>

#include "client/exec.h"

using mq::Millis;
using mq::client::kKillGrace;
using mq::client::run_command;

TEST_CASE("exec passes the body on stdin and the environment", "[client]") {
  auto r = run_command("test \"$(cat)\" = 'hello body' && test \"$MQ_TOPIC\" = orders", "hello body",
                       {{"MQ_TOPIC", "orders"}}, Millis(5000));
  REQUIRE(r);
  CHECK(r->ok());
}

TEST_CASE("exec gives the command no descriptor beyond stdin stdout and stderr", "[client]") {
  // A descriptor of this process without close-on-exec (as a broker connection may be).
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::string probe = "test ! -e /proc/self/fd/" + std::to_string(fds[0]) + " && test ! -e /proc/self/fd/" +
                      std::to_string(fds[1]) + " && test -e /proc/self/fd/0 && test -e /proc/self/fd/2";
  auto r = run_command(probe, "x", {}, Millis(5000));
  ::close(fds[0]);
  ::close(fds[1]);
  REQUIRE(r);
  CHECK(r->ok());
}

TEST_CASE("exec runs the command as sh -c would, once its gate opened", "[client]") {
  // no positional parameters, $0 sh, the gate (fd 3) closed, quoting and exit codes kept
  auto r = run_command("test $# -eq 0 && test \"$0\" = sh && test ! -e /proc/self/fd/3 && "
                       "x='a \"b\" c'; test \"$x\" = 'a \"b\" c' && exit 7",
                       "", {}, Millis(5000));
  REQUIRE(r);
  CHECK(r->exit_code == 7);
}

TEST_CASE("exec runs nothing when may_start says no once the command is spawned", "[client]") {
  char dir[] = "/tmp/mq-exec-XXXXXX";
  REQUIRE(::mkdtemp(dir) != nullptr);
  std::string marker = std::string(dir) + "/ran";
  int asked = 0;
  auto r = run_command("touch " + marker, "body", {}, Millis(5000), nullptr, [&] {
    ++asked;
    return false;
  });
  REQUIRE(r);
  CHECK(asked == 1);
  CHECK(r->not_started);
  CHECK_FALSE(r->ok());
  CHECK(r->describe() == "not started");
  CHECK(::access(marker.c_str(), F_OK) != 0);
  auto yes = run_command("touch " + marker, "body", {}, Millis(5000), nullptr, [] { return true; });
  REQUIRE(yes);
  CHECK(yes->ok());
  CHECK_FALSE(yes->not_started);
  CHECK(::access(marker.c_str(), F_OK) == 0);
  std::remove(marker.c_str());
  ::rmdir(dir);
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

TEST_CASE("exec kills what a terminated command started that ignores SIGTERM", "[client]") {
  char dir[] = "/tmp/mq-exec-test.XXXXXX";
  REQUIRE(::mkdtemp(dir));
  std::string pidfile = std::string(dir) + "/pid";
  // the shell dies on SIGTERM at once; its child ignores it and writes its pid
  auto t0 = std::chrono::steady_clock::now();
  auto r = run_command("sh -c \"trap '' TERM; echo \\$\\$ >" + pidfile + "; sleep 30\" & wait", "", {}, Millis(300));
  auto took = std::chrono::steady_clock::now() - t0;
  REQUIRE(r);
  CHECK(r->timed_out);
  CHECK(took >= kKillGrace);  // it was given the grace period
  CHECK(took < kKillGrace + std::chrono::seconds(3));
  std::ifstream in(pidfile);
  pid_t child = 0;
  REQUIRE(in >> child);
  // SIGKILLed: gone once its new parent reaped it
  bool gone = false;
  for (int i = 0; i < 100 && !gone; ++i) {
    gone = ::kill(child, 0) != 0;
    if (!gone) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  if (!gone) {  // a zombie nobody reaps (a container's init) counts as gone too
    std::ifstream st("/proc/" + std::to_string(child) + "/stat");
    std::string pid, comm, state;
    st >> pid >> comm >> state;
    gone = state == "Z";
  }
  CHECK(gone);
  std::remove(pidfile.c_str());
  ::rmdir(dir);
}

TEST_CASE("exec does not hang when the command ignores a large body", "[client]") {
  std::string big(1 << 20, 'x');
  auto r = run_command("true", big, {}, Millis(5000));
  REQUIRE(r);
  CHECK(r->ok());
}

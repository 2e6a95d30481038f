#include <catch2/catch.hpp>

#include <unistd.h>

#include <string>

#include "cli/output_writer.h"
#include "cli/signals.h"

using namespace mq;

TEST_CASE("the writer buffers until a block or flush", "[cli]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  cli::OutputWriter w(fds[1], 16);
  CHECK(w.write("0123456789"));
  char buf[64];
  // Nothing written yet: below the block size.
  CHECK(w.bytes_written() == 0);
  CHECK(w.write("abcdefghij"));
  CHECK(w.bytes_written() == 20);
  CHECK(::read(fds[0], buf, sizeof buf) == 20);
  CHECK(w.write("x"));
  CHECK(w.flush());
  CHECK(::read(fds[0], buf, sizeof buf) == 1);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("a closed reader ends the writer cleanly", "[cli]") {
  cli::ignore_sigpipe();
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  ::close(fds[0]);
  cli::OutputWriter w(fds[1]);
  CHECK(w.write("data"));
  CHECK_FALSE(w.flush());
  CHECK(w.closed());
  CHECK(w.error());
  CHECK_FALSE(w.write("more"));
  ::close(fds[1]);
}

TEST_CASE("an idle writer notices that the reader went away", "[cli]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  cli::OutputWriter w(fds[1]);
  CHECK_FALSE(w.reader_gone());
  ::close(fds[0]);
  CHECK(w.reader_gone());
  CHECK(w.closed());
  ::close(fds[1]);
}

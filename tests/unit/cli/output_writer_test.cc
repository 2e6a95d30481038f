#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>

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

TEST_CASE("in the background, a reader that does not read blocks neither the caller nor a stop", "[cli]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  cli::OutputWriter w(fds[1], 64 * 1024);
  w.start_background();
  std::string chunk(64 * 1024, 'x');
  // Far more than the pipe holds (64 KiB): the caller goes on, the writer thread waits.
  for (int i = 0; i < 4; ++i) {
    w.buffer().append(chunk);
    CHECK(w.commit());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));  // the thread took what was handed over
  w.buffer().append(chunk);
  CHECK(w.commit());
  CHECK(w.position() == 5 * chunk.size());
  CHECK(w.bytes_written() < w.position());
  CHECK(w.backlogged());
  std::atomic<bool> stop{false};
  auto t0 = std::chrono::steady_clock::now();
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    stop = true;
  });
  w.wait_room(stop);  // returns once asked to stop, although nothing was read
  stopper.join();
  CHECK_FALSE(w.finish(&stop, std::chrono::milliseconds(50)));  // gives the rest up
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
  CHECK(w.bytes_written() <= 64 * 1024);
  ::close(fds[0]);
  ::close(fds[1]);
}

TEST_CASE("in the background, everything reaches a reader that reads", "[cli]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  std::string got;
  std::thread reader([&] {
    char buf[65536];
    ssize_t n;
    while ((n = ::read(fds[0], buf, sizeof buf)) > 0) got.append(buf, static_cast<size_t>(n));
  });
  {
    cli::OutputWriter w(fds[1], 1000);
    w.start_background();
    std::string want;
    for (int i = 0; i < 20000; ++i) {
      std::string line = std::to_string(i) + "\n";
      want += line;
      w.buffer().append(line);
      REQUIRE(w.commit());
      if (i % 997 == 0) REQUIRE(w.flush());
    }
    std::atomic<bool> stop{false};
    CHECK(w.finish(&stop));
    CHECK(w.bytes_written() == want.size());
    CHECK(w.position() == want.size());
    ::close(fds[1]);
    reader.join();
    CHECK(got == want);
  }
  ::close(fds[0]);
}

TEST_CASE("a closed stdout says so", "[cli]") {
  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  cli::OutputWriter w(fds[0]);  // the read end: write(2) fails with EBADF
  CHECK(w.write("x"));
  CHECK_FALSE(w.flush());
  CHECK_FALSE(w.closed());
  CHECK(w.error().message() == "cannot write output: standard output is closed");
  ::close(fds[0]);
  ::close(fds[1]);
}

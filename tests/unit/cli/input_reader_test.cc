#include <catch2/catch.hpp>

#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "cli/input_reader.h"

using namespace mq;

namespace {

// Feeds `data` through a pipe (from a thread, so large inputs do not block).
class PipeInput {
 public:
  explicit PipeInput(std::string data) {
    int fds[2];
    REQUIRE(::pipe(fds) == 0);
    rd_ = fds[0];
    writer_ = std::thread([fd = fds[1], d = std::move(data)] {
      size_t pos = 0;
      while (pos < d.size()) {
        ssize_t n = ::write(fd, d.data() + pos, d.size() - pos);
        if (n <= 0) break;
        pos += static_cast<size_t>(n);
      }
      ::close(fd);
    });
  }
  ~PipeInput() {
    writer_.join();
    ::close(rd_);
  }
  int fd() const { return rd_; }

 private:
  int rd_ = -1;
  std::thread writer_;
};

std::vector<cli::InputItem> read_all(const std::string& data, cli::InputMode mode, size_t max = 1 << 20) {
  PipeInput in(data);
  cli::InputReader r(in.fd(), mode, max);
  std::vector<cli::InputItem> out;
  cli::InputItem item;
  while (r.next(item)) out.push_back(item);
  REQUIRE(r.status());
  return out;
}

}  // namespace

TEST_CASE("lines are messages without the newline, the last may lack one", "[cli]") {
  auto items = read_all("a\n\nccc\nlast", cli::InputMode::lines);
  REQUIRE(items.size() == 4);
  CHECK(items[0].body == "a");
  CHECK(items[1].body == "");
  CHECK(items[2].body == "ccc");
  CHECK(items[3].body == "last");
  CHECK(items[3].line == 4);
  CHECK(read_all("", cli::InputMode::lines).empty());
  CHECK(read_all("x\n", cli::InputMode::lines).size() == 1);
}

TEST_CASE("many lines across read chunks all arrive in order", "[cli]") {
  std::string data;
  for (int i = 1; i <= 100000; ++i) data += std::to_string(i) + "\n";
  auto items = read_all(data, cli::InputMode::lines);
  REQUIRE(items.size() == 100000);
  for (int i = 0; i < 100000; i += 997) CHECK(items[i].body == std::to_string(i + 1));
  CHECK(items.back().line == 100000);
}

TEST_CASE("option 0 splits on NUL and keeps newlines and binary", "[cli]") {
  std::string data("a\nb\0\xff\x01\0", 7);
  auto items = read_all(data, cli::InputMode::nul);
  REQUIRE(items.size() == 2);
  CHECK(items[0].body == "a\nb");
  CHECK(items[1].body == "\xff\x01");
}

TEST_CASE("option raw reads all of the input as one message", "[cli]") {
  std::string data("one\ntwo\0three", 13);
  auto items = read_all(data, cli::InputMode::raw);
  REQUIRE(items.size() == 1);
  CHECK(items[0].body == data);
  auto empty = read_all("", cli::InputMode::raw);
  REQUIRE(empty.size() == 1);
  CHECK(empty[0].body.empty());
}

TEST_CASE("option json reports a malformed line with its number and goes on", "[cli]") {
  std::string data =
      "{\"body\": \"one\", \"key\": \"k\"}\n"
      "{\"body\": \n"
      "{\"body_b64\": \"AAE=\", \"tag\": \"T\", \"props\": {\"a\": \"b\"}}\n"
      "{\"body_b64\": \"!!!!\"}\n"
      "\n"
      "{\"body\": \"six\"}\n";
  auto items = read_all(data, cli::InputMode::json);
  REQUIRE(items.size() == 6);
  CHECK(items[0].error);
  CHECK(items[0].body == "one");
  CHECK(items[0].key == std::optional<std::string>("k"));
  CHECK(items[1].error.message().rfind("line 2: invalid JSON: ", 0) == 0);
  CHECK(items[2].error);
  CHECK(items[2].body == std::string("\0\x01", 2));
  CHECK(items[2].tag == std::optional<std::string>("T"));
  CHECK(items[3].error.message().rfind("line 4: body_b64 is not valid base64: ", 0) == 0);
  CHECK(items[4].error.message() == "line 5: empty line, expected a JSON object");
  CHECK(items[5].error);
  CHECK(items[5].body == "six");
  CHECK(items[5].line == 6);
}

TEST_CASE("option json: numbers beyond a double, NUL bytes and repeated property names are malformed lines",
          "[cli]") {
  std::string data;
  data = "{\"body\": \"a\", \"x\": 1e999}\n";
  const char with_nul[] = "{\"body\": \"b\"}\0{\"body\": \"hidden\"}\n";
  data += std::string(with_nul, sizeof with_nul - 1);
  data += "{\"body\": \"c\", \"props\": {\"n\": \"1\", \"n\": \"2\"}}\n"
          "{\"body\": \"d\", \"props\": {\"n\": \"1\"}, \"props_b64\": {\"bg==\": \"dw==\"}}\n"
          "{\"body\": \"e\", \"props_b64\": {\"YQ==\": \"MQ==\", \"YQ==\": \"Mg==\"}}\n"
          " \t\r\n"
          "{\"body\": \"f\", \"y\": -1e400}\n"
          "{\"body\": \"g\", \"props\": {\"n\": \"1\", \"m\": \"2\"}, \"z\": {\"n\": 1, \"n\": 2}}\n";
  auto items = read_all(data, cli::InputMode::json);
  REQUIRE(items.size() == 8);
  CHECK(items[0].error.message() == "line 1: invalid JSON: number overflow parsing '1e999'");
  CHECK(items[1].error.message() == "line 2: invalid JSON: column 14: a NUL byte");
  CHECK(items[2].error.message() == "line 3: property \"n\" in \"props\" given twice");
  CHECK(items[3].error.message() == "line 4: property \"n\" given twice");
  CHECK(items[4].error.message() == "line 5: property \"YQ==\" in \"props_b64\" given twice");
  CHECK(items[5].error.message() == "line 6: empty line, expected a JSON object");
  CHECK(items[6].error.message().rfind("line 7: invalid JSON: number overflow parsing", 0) == 0);
  // Only props are checked below the top level: other objects are ignored, as their fields are.
  CHECK(items[7].error);
  CHECK(items[7].line == 8);
  REQUIRE(items[7].props);
  CHECK(items[7].props->size() == 2);
}

TEST_CASE("option json: a line may be six times the message size (every byte escaped)", "[cli]") {
  std::string body(1000, '\x01'), esc;
  for (size_t i = 0; i < body.size(); ++i) esc += "\\u0001";
  std::string data = "{\"body\": \"" + esc + "\"}\n{\"body\": \"" + esc + esc + "\"}\n";
  auto items = read_all(data, cli::InputMode::json, 1000);
  REQUIRE(items.size() == 2);
  CHECK(items[0].error);
  CHECK(items[0].body == body);
  // The limit is on the line (6 x 1000 + 1 MiB here); the decoded size is the caller's to check.
  CHECK(items[1].error);
  CHECK(items[1].body.size() == 2000);
  std::string huge = "{\"body\": \"" + std::string(6000 + (1u << 20), 'x') + "\"}\n{\"body\": \"next\"}\n";
  auto big = read_all(huge, cli::InputMode::json, 1000);
  REQUIRE(big.size() == 2);
  CHECK(big[0].error.message() ==
        "line 1: longer than " + std::to_string(6000 + (1u << 20)) +
            " bytes, more than a message of at most 1000 bytes takes in JSON");
  CHECK(big[1].body == "next");
}

TEST_CASE("a line longer than the limit is reported and skipped", "[cli]") {
  std::string data = "short\n" + std::string(5000, 'x') + "\nafter\n";
  auto items = read_all(data, cli::InputMode::lines, 1000);
  REQUIRE(items.size() == 3);
  CHECK(items[0].body == "short");
  CHECK(items[1].error.message() == "line 2: longer than the maximum message size of 1000 bytes");
  CHECK(items[2].body == "after");
  CHECK(items[2].line == 3);
}

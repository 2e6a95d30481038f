#include <catch2/catch.hpp>

#include <string>

#include "protocol/frame.h"
#include "protocol/messages.h"
#include "util/bytes.h"

using namespace mq::protocol;

namespace {

// Every proper prefix of a valid encoding must be rejected.
template <class T>
void check_prefixes_rejected(const std::string& full) {
  for (size_t n = 0; n < full.size(); ++n) {
    T t;
    INFO("prefix of " << n << " bytes");
    CHECK_FALSE(t.decode(std::string_view(full).substr(0, n)));
  }
}

}  // namespace

TEST_CASE("hello response round trips and rejects truncation", "[protocol]") {
  HelloResponse h;
  h.role = Role::slave;
  h.version = "0.1.0";
  h.broker_addr = "127.0.0.1:9876";
  h.master_addr = "10.0.0.1:9876";
  h.slaves = {"a:1", "b:2"};
  h.max_message_size = 4u << 20;
  h.default_queues = 8;
  std::string buf;
  h.encode(buf);
  HelloResponse d;
  REQUIRE(d.decode(buf));
  CHECK(d.role == Role::slave);
  CHECK(d.version == h.version);
  CHECK(d.broker_addr == h.broker_addr);
  CHECK(d.master_addr == h.master_addr);
  CHECK(d.slaves == h.slaves);
  CHECK(d.max_message_size == h.max_message_size);
  CHECK(d.default_queues == 8);
  check_prefixes_rejected<HelloResponse>(buf);
  CHECK_FALSE(d.decode(buf + "x"));  // trailing garbage
}

TEST_CASE("send response round trips and rejects truncation", "[protocol]") {
  SendResponse s;
  s.placed = {{0, 10}, {3, 1ull << 40}, {1, 0}};
  std::string buf;
  s.encode(buf);
  SendResponse d;
  REQUIRE(d.decode(buf));
  CHECK(d.placed == s.placed);
  check_prefixes_rejected<SendResponse>(buf);
  std::string huge;
  mq::ByteWriter(huge).u32(0xffffffffu);  // a count that cannot fit
  CHECK_FALSE(d.decode(huge));
}

TEST_CASE("pull request round trips and rejects truncation", "[protocol]") {
  PullRequest p;
  p.topic = "orders";
  p.queue = 3;
  p.offset = 123456789012ull;
  p.max_msgs = 77;
  p.max_bytes = 1 << 20;
  p.wait_ms = 30000;
  p.tag_hashes = {1, 2, 0xdeadbeef};
  std::string buf;
  p.encode(buf);
  PullRequest d;
  REQUIRE(d.decode(buf));
  CHECK(d.topic == "orders");
  CHECK(d.queue == 3);
  CHECK(d.offset == p.offset);
  CHECK(d.max_msgs == 77);
  CHECK(d.max_bytes == p.max_bytes);
  CHECK(d.wait_ms == 30000);
  CHECK(d.tag_hashes == p.tag_hashes);
  check_prefixes_rejected<PullRequest>(buf);
}

TEST_CASE("pull response round trips its records", "[protocol]") {
  PullResponse p;
  p.next_offset = 9;
  p.min_offset = 1;
  p.max_offset = 20;
  p.count = 2;
  p.records = std::string("\x00\x01\x02record bytes", 15);
  std::string buf;
  p.encode(buf);
  PullResponse d;
  REQUIRE(d.decode(buf));
  CHECK(d.next_offset == 9);
  CHECK(d.min_offset == 1);
  CHECK(d.max_offset == 20);
  CHECK(d.count == 2);
  CHECK(d.records == p.records);
  for (size_t n = 0; n < 28; ++n) CHECK_FALSE(d.decode(std::string_view(buf).substr(0, n)));
}

TEST_CASE("topic info response round trips and rejects truncation", "[protocol]") {
  TopicInfoResponse t;
  t.topics.push_back({"a", {{0, 1, 2, 3, 4}, {1, 5, 6, -7, 8}}});
  t.topics.push_back({"%DLQ%g", {}});
  std::string buf;
  t.encode(buf);
  TopicInfoResponse d;
  REQUIRE(d.decode(buf));
  REQUIRE(d.topics.size() == 2);
  CHECK(d.topics[0].topic == "a");
  REQUIRE(d.topics[0].queues.size() == 2);
  CHECK(d.topics[0].queues[1].queue == 1);
  CHECK(d.topics[0].queues[1].min_offset == 5);
  CHECK(d.topics[0].queues[1].max_offset == 6);
  CHECK(d.topics[0].queues[1].newest_store_ms == -7);
  CHECK(d.topics[0].queues[1].bytes == 8);
  CHECK(d.topics[1].topic == "%DLQ%g");
  check_prefixes_rejected<TopicInfoResponse>(buf);
}

TEST_CASE("offset for time request round trips and rejects truncation", "[protocol]") {
  OffsetForTimeRequest o{"t", 2, 1764000000123};
  std::string buf;
  o.encode(buf);
  OffsetForTimeRequest d;
  REQUIRE(d.decode(buf));
  CHECK(d.topic == "t");
  CHECK(d.queue == 2);
  CHECK(d.ms == 1764000000123);
  check_prefixes_rejected<OffsetForTimeRequest>(buf);
}

TEST_CASE("error payloads become statuses with their message", "[protocol]") {
  auto s = status_from_response(Code::topic_not_found, encode_error("topic x does not exist"));
  CHECK(s.code() == mq::Code::not_found);
  CHECK(s.message() == "topic x does not exist");
  auto g = status_from_response(Code::disk_full, "\xff");  // garbage: falls back to the code name
  CHECK(g.code() == mq::Code::disk_full);
  CHECK(g.message() == "DISK_FULL");
  CHECK(status_from_response(Code::ok, "").is_ok());
}

TEST_CASE("frame decoder reassembles frames fed one byte at a time", "[protocol]") {
  std::string wire;
  encode_frame(wire, Type::send, 0, 7, Code::ok, "hello");
  encode_frame(wire, Type::pull, kFlagResponse, 8, Code::disk_full, "");
  encode_frame(wire, Type::hello, kFlagOneway, 9, Code::ok, std::string(70000, 'x'));
  FrameDecoder dec;
  std::vector<Frame> got;
  for (char c : wire) {
    dec.feed(std::string_view(&c, 1));
    Frame f;
    while (true) {
      auto st = dec.next(f);
      REQUIRE(st != FrameDecoder::State::error);
      if (st == FrameDecoder::State::need_more) break;
      got.push_back(f);
    }
  }
  REQUIRE(got.size() == 3);
  CHECK(got[0].header.type == Type::send);
  CHECK(got[0].header.request_id == 7);
  CHECK(got[0].payload == "hello");
  CHECK(got[1].header.flags == kFlagResponse);
  CHECK(got[1].header.status == Code::disk_full);
  CHECK(got[1].payload.empty());
  CHECK(got[2].header.flags == kFlagOneway);
  CHECK(got[2].payload.size() == 70000);
  CHECK(dec.buffered() == 0);
}

TEST_CASE("frame decoder reads through prepare and commit", "[protocol]") {
  std::string wire;
  for (uint32_t i = 0; i < 100; ++i) encode_frame(wire, Type::pull, 0, i, Code::ok, std::to_string(i));
  FrameDecoder dec;
  size_t pos = 0;
  uint32_t next = 0;
  while (pos < wire.size()) {
    size_t n = std::min<size_t>(13, wire.size() - pos);
    char* at = dec.prepare(64);
    std::memcpy(at, wire.data() + pos, n);
    dec.commit(n);
    pos += n;
    Frame f;
    while (dec.next(f) == FrameDecoder::State::frame) {
      CHECK(f.header.request_id == next);
      CHECK(f.payload == std::to_string(next));
      ++next;
    }
  }
  CHECK(next == 100);
}

TEST_CASE("frame decoder rejects oversized frames, short lengths and wrong versions", "[protocol]") {
  SECTION("oversized") {
    FrameDecoder dec(1024);
    std::string wire;
    encode_frame(wire, Type::send, 0, 1, Code::ok, std::string(2000, 'a'));
    dec.feed(std::string_view(wire).substr(0, 8));  // the header alone is enough to know
    Frame f;
    CHECK(dec.next(f) == FrameDecoder::State::error);
    CHECK(dec.error().find("exceeds") != std::string::npos);
  }
  SECTION("length below the header") {
    FrameDecoder dec;
    std::string wire(4, '\0');
    mq::store_u32(wire.data(), 3);
    dec.feed(wire);
    Frame f;
    CHECK(dec.next(f) == FrameDecoder::State::error);
  }
  SECTION("wrong version") {
    FrameDecoder dec;
    std::string wire;
    encode_frame(wire, Type::send, 0, 1, Code::ok, "x");
    wire[4] = 9;
    dec.feed(wire);
    Frame f;
    CHECK(dec.next(f) == FrameDecoder::State::error);
    CHECK(dec.error().find("version") != std::string::npos);
    CHECK(dec.next(f) == FrameDecoder::State::error);  // final
  }
  SECTION("garbage text") {
    FrameDecoder dec;
    dec.feed("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    Frame f;
    CHECK(dec.next(f) == FrameDecoder::State::error);
    CHECK(dec.error() == "frame of 542393671 bytes exceeds the limit of 67108864 (the bytes look like HTTP)");
  }
  SECTION("a TLS client hello is said to be one") {
    FrameDecoder dec;
    dec.feed(std::string("\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", 11));
    Frame f;
    CHECK(dec.next(f) == FrameDecoder::State::error);
    CHECK(dec.error().find("(the bytes look like a TLS handshake: this broker does not serve TLS)") != std::string::npos);
  }
}

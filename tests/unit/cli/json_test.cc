#include <catch2/catch.hpp>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <string>

#include "cli/input_reader.h"
#include "cli/json_writer.h"
#include "cli/message_format.h"
#include "storage/record.h"

using namespace mq;

namespace {

std::string quoted(std::string_view s) {
  std::string out;
  cli::append_json_string(out, s);
  return out;
}

// Encodes m as a record and returns its json line (without newline).
std::string json_of(const storage::Message& m, std::string& storage_buf, std::string_view broker = "") {
  storage_buf.clear();
  storage::encode_record(m, storage_buf);
  storage::RecordView rv;
  REQUIRE(storage::decode_record(storage_buf, rv) == storage::DecodeResult::ok);
  std::string out;
  cli::append_message_json(rv, broker, out);
  return out;
}

}  // namespace

TEST_CASE("json strings escape quotes, backslashes and control characters", "[cli]") {
  CHECK(quoted("plain") == "\"plain\"");
  CHECK(quoted("a\"b\\c") == "\"a\\\"b\\\\c\"");
  CHECK(quoted("\n\t\r\b\f") == "\"\\n\\t\\r\\b\\f\"");
  CHECK(quoted(std::string_view("\0\x01\x1f", 3)) == "\"\\u0000\\u0001\\u001f\"");
  CHECK(quoted("\x7f") == "\"\x7f\"");
  CHECK(quoted("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
  CHECK(quoted("bad\xff") == "\"bad\xef\xbf\xbd\"");
}

TEST_CASE("utf-8 validation rejects overlong forms, surrogates and stray bytes", "[cli]") {
  CHECK(cli::is_valid_utf8(""));
  CHECK(cli::is_valid_utf8("hello world, long enough for the fast path"));
  CHECK(cli::is_valid_utf8("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\xf4\x8f\xbf\xbf"));
  CHECK_FALSE(cli::is_valid_utf8("\xc0\xaf"));          // overlong '/'
  CHECK_FALSE(cli::is_valid_utf8("\xe0\x80\xaf"));      // overlong
  CHECK_FALSE(cli::is_valid_utf8("\xed\xa0\x80"));      // surrogate
  CHECK_FALSE(cli::is_valid_utf8("\xf4\x90\x80\x80"));  // above U+10FFFF
  CHECK_FALSE(cli::is_valid_utf8("abc\x80"));
  CHECK_FALSE(cli::is_valid_utf8("\xc3"));
  CHECK_FALSE(cli::is_valid_utf8("12345678\xff"));
}

TEST_CASE("json output is valid JSON with every field", "[cli]") {
  storage::Message m;
  m.topic = "t";
  m.queue = 3;
  m.offset = 42;
  m.born_ms = 1795600800250;
  m.key = "k\"1";
  m.tag = "TagA";
  m.props = {{"a", "1"}, {"quote\"d", "x\ny"}};
  m.body = "hello\tworld";
  std::string buf;
  auto line = json_of(m, buf, "127.0.0.1:9876");
  auto j = nlohmann::json::parse(line);
  CHECK(j["topic"] == "t");
  CHECK(j["broker"] == "127.0.0.1:9876");  // (topic, queue, offset) is one message per master
  CHECK(line.find("{\"topic\":\"t\",\"broker\":") == 0);
  CHECK_FALSE(nlohmann::json::parse(json_of(m, buf)).contains("broker"));
  CHECK(j["queue"] == 3);
  CHECK(j["offset"] == 42);
  CHECK(j["id"].get<std::string>().size() == 32);
  CHECK(j["key"] == "k\"1");
  CHECK(j["tag"] == "TagA");
  CHECK(j["props"]["quote\"d"] == "x\ny");
  CHECK(j["born"] == "2026-11-25T10:00:00.250Z");
  CHECK(j["stored"] == "1970-01-01T00:00:00.000Z");
  CHECK(j["reconsume"] == 0);
  CHECK(j["body"] == "hello\tworld");
  CHECK_FALSE(j.contains("body_b64"));
}

TEST_CASE("json output round trips through the --json reader", "[cli]") {
  std::string binary;
  for (int i = 0; i < 256; ++i) binary.push_back(static_cast<char>(255 - i));
  std::string control = std::string("nul\0 bell\a esc\x1b del\x7f", 21);
  std::string utf8 = "gr\xc3\xbc\xc3\x9f \xe2\x9c\x93 \xf0\x9f\x8e\x89 \"q\" \\b";
  for (const std::string& body : {binary, control, utf8, std::string()}) {
    storage::Message m;
    m.topic = "t";
    m.key = "key \xc3\xa9";
    m.tag = "t|g";
    m.props = {{"p1", "v\t1"}, {"p2", ""}};
    m.body = body;
    std::string buf;
    auto line = json_of(m, buf);
    CHECK(line.find('\n') == std::string::npos);
    CHECK((line.find("\"body_b64\"") != std::string::npos) == !cli::is_valid_utf8(body));
    cli::InputItem item;
    REQUIRE(cli::parse_json_line(line, item));
    CHECK(item.body == body);
    CHECK(item.key == m.key);
    CHECK(item.tag == m.tag);
    REQUIRE(item.props);
    CHECK(*item.props == m.props);
  }
}

TEST_CASE("json output keeps binary keys, tags and properties in base64", "[cli]") {
  storage::Message m;
  m.topic = "t";
  m.key = "k\xff";
  m.tag = std::string("t\0\xfe", 3);
  m.props = {{"plain", "v"}, {"bin", "\xc3"}, {"n\x80me", "ok"}};
  m.body = "b";
  std::string buf;
  auto line = json_of(m, buf);
  auto j = nlohmann::json::parse(line);  // valid JSON, no U+FFFD in place of the bytes
  CHECK_FALSE(j.contains("key"));
  CHECK(j["key_b64"] == "a/8=");
  CHECK(j["tag_b64"] == "dAD+");
  CHECK(j["props"] == nlohmann::json{{"plain", "v"}});
  CHECK(j["props_b64"].size() == 2);
  CHECK(j["props_b64"]["Ymlu"] == "ww==");
  cli::InputItem item;
  REQUIRE(cli::parse_json_line(line, item));
  CHECK(item.key == m.key);
  CHECK(item.tag == m.tag);
  REQUIRE(item.props);
  auto got = *item.props, want = m.props;
  std::sort(got.begin(), got.end());
  std::sort(want.begin(), want.end());
  CHECK(got == want);
  // a text key and its _b64 form together are ambiguous
  cli::InputItem both;
  CHECK_FALSE(cli::parse_json_line(R"({"body": "x", "key": "a", "key_b64": "YQ=="})", both));
  CHECK_FALSE(cli::parse_json_line(R"({"body": "x", "props_b64": {"!!": "YQ=="}})", both));
}

TEST_CASE("a --json line naming a field twice is refused, not read as its last value", "[cli]") {
  cli::InputItem item;
  auto r = cli::parse_json_line(R"({"body": "dup", "body": "dup2"})", item);
  REQUIRE_FALSE(r);
  CHECK(r.message() == "\"body\" given twice");
  // the same name in a nested object is another field
  cli::InputItem ok;
  CHECK(cli::parse_json_line(R"({"body": "x", "props": {"body": "1"}})", ok));
  CHECK(ok.body == "x");
}

TEST_CASE("json output gives the reader where the message was stored", "[cli]") {
  storage::Message m;
  m.topic = "orders";
  m.queue = 3;
  m.offset = 1234567890123;
  m.id = storage::MessageId{};
  m.id[0] = 0xab;
  m.id[15] = 0x01;
  m.body = "b";
  std::string buf;
  cli::InputItem item;
  REQUIRE(cli::parse_json_line(json_of(m, buf), item));
  CHECK(item.origin.topic == "orders");
  CHECK(item.origin.queue == 3u);
  CHECK(item.origin.offset == 1234567890123u);
  CHECK(item.origin.id == storage::id_to_hex(m.id));
  // a record as mq-send --json takes it has no origin; fields of another type are ignored
  cli::InputItem bare;
  REQUIRE(cli::parse_json_line(R"({"body": "x", "topic": 7, "queue": "1", "offset": -2, "id": null})", bare));
  CHECK_FALSE(bare.origin.topic);
  CHECK_FALSE(bare.origin.queue);
  CHECK_FALSE(bare.origin.offset);
  CHECK_FALSE(bare.origin.id);
}

TEST_CASE("json lines with problems say what is wrong", "[cli]") {
  auto err = [](std::string_view line) {
    cli::InputItem item;
    Status s = cli::parse_json_line(line, item);
    REQUIRE_FALSE(s);
    return s.message();
  };
  CHECK(err("{\"body\": ").rfind("invalid JSON: column", 0) == 0);
  CHECK(err("[1,2]") == "expected a JSON object, got array");
  CHECK(err("{\"key\": \"k\"}") == "missing \"body\" or \"body_b64\"");
  CHECK(err("{\"body\": 5}") == "\"body\" must be a string, got number");
  CHECK(err("{\"body_b64\": \"Zg=\"}").rfind("body_b64 is not valid base64: ", 0) == 0);
  CHECK(err("{\"body\": \"a\", \"body_b64\": \"Zg==\"}") == "both \"body\" and \"body_b64\" given");
  CHECK(err("{\"body\": \"a\", \"tag\": 1}") == "\"tag\" must be a string, got number");
  CHECK(err("{\"body\": \"a\", \"props\": []}") == "\"props\" must be an object, got array");
  CHECK(err("{\"body\": \"a\", \"props\": {\"x\": 1}}") == "property \"x\" must be a string, got number");
}

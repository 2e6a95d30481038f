// Records (record.h): encoding, the checked decode and the unchecked view.
#include <catch2/catch.hpp>

#include <string>

#include "storage/record.h"

using namespace mq::storage;

namespace {

Message sample() {
  Message m;
  m.topic = "orders";
  m.queue = 3;
  m.offset = 41;
  m.id[0] = 7;
  m.born_ms = 1764000000123;
  m.store_ms = 1764000000456;
  m.reconsume = 2;
  m.key = "k1";
  m.tag = "paid";
  m.set_prop("trace", "abc");
  m.body = std::string(300, 'b');
  return m;
}

}  // namespace

TEST_CASE("an encoded record decodes and views to the same fields", "[storage]") {
  std::string rec;
  encode_record(sample(), rec);
  CHECK(rec.size() == encoded_size(sample()));
  RecordView d, v;
  REQUIRE(decode_record(rec, d) == DecodeResult::ok);
  REQUIRE(view_record(rec, v));
  for (auto* r : {&d, &v}) {
    CHECK(r->bytes.size() == rec.size());
    CHECK(r->topic == "orders");
    CHECK(r->queue == 3);
    CHECK(r->offset == 41);
    CHECK(r->id == sample().id);
    CHECK(r->born_ms == 1764000000123);
    CHECK(r->store_ms == 1764000000456);
    CHECK(r->reconsume == 2);
    CHECK(r->key == "k1");
    CHECK(r->tag == "paid");
    std::string_view t;
    CHECK(r->prop("trace", t));
    CHECK(t == "abc");
    CHECK(r->body == std::string(300, 'b'));
  }
}

TEST_CASE("a view checks lengths only; the decode also checks the checksum", "[storage]") {
  std::string rec;
  encode_record(sample(), rec);
  std::string flipped = rec;
  flipped.back() ^= 1;  // a body bit: the checksum no longer matches
  RecordView v;
  std::string why;
  CHECK(decode_record(flipped, v, &why) == DecodeResult::bad);
  CHECK(why == kChecksumMismatch);
  CHECK(view_record(flipped, v));  // for records decode_record accepted before
  // Not a whole record: refused, never read past the end.
  CHECK_FALSE(view_record(std::string_view(rec).substr(0, rec.size() - 1), v));
  CHECK_FALSE(view_record(std::string_view(rec).substr(0, 10), v));
  std::string longer = rec;
  longer[0] = static_cast<char>(longer[0] + 1);  // the size no longer matches the fields
  longer += 'x';
  CHECK_FALSE(view_record(longer, v));
}

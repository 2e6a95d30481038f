// The record decoder (storage/record.h): records arrive from disk, in send
// requests, pull and replicate responses. The input is a run of records back
// to back. Every record that decodes must re-encode to the same bytes, and a
// truncated copy of it must never decode as ok.
#include "fuzz_util.h"
#include "storage/record.h"

using namespace mq;
using namespace mq::storage;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  std::string_view in = fuzz::as_view(data, size);
  size_t pos = 0;
  while (pos < in.size()) {
    RecordView v;
    std::string why;
    std::string_view rest = in.substr(pos);
    auto res = decode_record(rest, v, &why);
    auto parsed = parse_record(rest);
    MQ_FUZZ_CHECK((res == DecodeResult::ok) == static_cast<bool>(parsed), "decode_record and parse_record disagree");
    if (res == DecodeResult::bad) MQ_FUZZ_CHECK(!why.empty(), "bad record without a reason");
    if (res != DecodeResult::ok) break;
    MQ_FUZZ_CHECK(v.bytes.size() >= kRecordHeaderSize && v.bytes.size() <= rest.size(), "record size {}",
                  v.bytes.size());
    MQ_FUZZ_CHECK(v.bytes.data() == rest.data(), "record does not start where asked");

    Message m = v.to_message();
    std::string again;
    encode_record(m, again);
    MQ_FUZZ_CHECK(encoded_size(m) == again.size(), "encoded_size {} vs {}", encoded_size(m), again.size());
    // flags is reserved (0 when written): compare the rest.
    std::string orig(v.bytes);
    orig[kOffFlags] = 0;
    std::string cmp = again;
    MQ_FUZZ_CHECK(cmp.substr(8) == orig.substr(8), "re-encoded record differs");

    // A torn copy is need_more, never ok.
    RecordView t;
    if (v.bytes.size() > 1)
      MQ_FUZZ_CHECK(decode_record(v.bytes.substr(0, v.bytes.size() / 2), t) != DecodeResult::ok,
                    "half a record decoded");

    // Property lookups agree with the decoded list.
    for (auto& [k, val] : m.props) {
      std::string_view got;
      MQ_FUZZ_CHECK(v.prop(k, got), "property '{}' not found", k);
      (void)got;
    }
    std::string hex = id_to_hex(v.id);
    MessageId back{};
    MQ_FUZZ_CHECK(id_from_hex(hex, back) && back == v.id, "message id hex round trip");
    (void)tag_hash(v.tag);

    // Stamping keeps the record valid.
    std::string stamped(v.bytes);
    stamp_record(stamped.data(), v.queue + 1, v.offset + 1, v.store_ms ^ 1);
    set_record_reconsume(stamped.data(), v.reconsume + 1);
    RecordView s;
    MQ_FUZZ_CHECK(decode_record(stamped, s) == DecodeResult::ok && s.offset == v.offset + 1,
                  "stamped record does not decode");
    pos += v.bytes.size();
  }
  // Hex ids from arbitrary text.
  MessageId id{};
  if (id_from_hex(in.substr(0, 32), id)) MQ_FUZZ_CHECK(in.size() >= 32, "short hex accepted");
  return 0;
}

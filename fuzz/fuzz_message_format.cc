// Output formats (cli/message_format.h): a format spec (body, json or a
// template) and a message built from the input. Layout: u64 born_ms, u64
// store_ms, u32 reconsume, then "\x00|"-separated spec, topic, key, tag, body,
// and property name/value pairs. The json format must be valid JSON that gives
// back the body (body or body_b64), the times and the numbers.
#include <nlohmann/json.hpp>

#include "cli/base64.h"
#include "cli/json_writer.h"
#include "cli/message_format.h"
#include "fuzz_util.h"
#include "util/parse.h"

using namespace mq;
using namespace mq::cli;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  fuzz::Steer steer(fuzz::as_view(data, size));
  uint64_t born = steer.u32() | (static_cast<uint64_t>(steer.u32()) << 32);
  uint64_t stored = steer.u32() | (static_cast<uint64_t>(steer.u32()) << 32);
  uint32_t reconsume = steer.u32();
  auto parts = fuzz::split(steer.rest(), std::string_view("\0|", 2), 40);
  parts.resize(std::max<size_t>(parts.size(), 5));

  storage::Message m;
  m.topic.assign(parts[1].substr(0, 65535));
  m.key.assign(parts[2].substr(0, 65535));
  m.tag.assign(parts[3].substr(0, 65535));
  m.body.assign(parts[4]);
  m.born_ms = static_cast<int64_t>(born);
  m.store_ms = static_cast<int64_t>(stored);
  m.reconsume = reconsume;
  m.offset = born ^ stored;
  m.queue = reconsume >> 3;
  for (size_t i = 5; i + 1 < parts.size(); i += 2)
    m.props.emplace_back(std::string(parts[i].substr(0, 65535)), std::string(parts[i + 1]));
  std::string rec;
  storage::encode_record(m, rec);
  storage::RecordView v;
  MQ_FUZZ_CHECK(storage::decode_record(rec, v) == storage::DecodeResult::ok, "encoded message does not decode");

  for (bool nul : {false, true}) {
    auto f = MessageFormat::parse(parts[0], nul);
    if (f) {
      std::string out;
      f->append(v, "127.0.0.1:9876", out);
      if (parts[0] == "body") MQ_FUZZ_CHECK(out.size() == m.body.size() + 1, "body format adds more than a terminator");
    } else {
      MQ_FUZZ_CHECK(!f.status().message().empty(), "format error without a message");
    }
  }

  std::string js;
  append_message_json(v, "127.0.0.1:9876", js);
  auto j = nlohmann::json::parse(js, nullptr, false);
  MQ_FUZZ_CHECK(!j.is_discarded() && j.is_object(), "json format is not a JSON object: {}", js);
  MQ_FUZZ_CHECK(j["queue"].get<uint64_t>() == m.queue && j["offset"].get<uint64_t>() == m.offset &&
                    j["reconsume"].get<uint64_t>() == m.reconsume,
                "numbers differ in {}", js);
  if (j.contains("body")) {
    MQ_FUZZ_CHECK(is_valid_utf8(m.body) && j["body"].get<std::string>() == m.body, "body differs");
  } else {
    auto b = base64_decode(j["body_b64"].get<std::string>());
    MQ_FUZZ_CHECK(b && *b == m.body, "body_b64 does not give the body back");
  }
  if (is_valid_utf8(m.topic)) MQ_FUZZ_CHECK(j["topic"].get<std::string>() == m.topic, "topic differs");
  // Times are RFC 3339 in UTC with milliseconds; within years 0000-9999 they parse back.
  constexpr int64_t kMin = -62167219200000, kMax = 253402300799999;
  for (auto [name, ms] : {std::pair<const char*, int64_t>{"born", m.born_ms}, {"stored", m.store_ms}}) {
    auto text = j[name].get<std::string>();
    if (ms >= kMin && ms <= kMax) {
      auto back = parse_time(text, 0);
      MQ_FUZZ_CHECK(back && *back == ms, "{} {} printed as {} parses back as {}", name, ms, text,
                    back ? *back : -1);
    }
  }
  return 0;
}

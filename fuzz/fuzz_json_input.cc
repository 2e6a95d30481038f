// mq-send's input side: --json lines (parse_json_line), the strict base64 of
// body_b64, and the InputReader in every mode over the input (a memfd). The
// first byte picks the reader mode and the maximum item size.
#include <sys/mman.h>
#include <unistd.h>

#include <nlohmann/json.hpp>

#include "cli/base64.h"
#include "cli/input_reader.h"
#include "fuzz_util.h"

using namespace mq;
using namespace mq::cli;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  fuzz::Steer steer(fuzz::as_view(data, size));
  uint8_t sel = steer.u8();
  std::string_view in = steer.rest();

  // Every line as a --json line.
  for (auto line : fuzz::split(in, "\n", 256)) {
    InputItem item;
    Status st = parse_json_line(line, item);
    if (st.is_ok()) {
      // What parsed is what a JSON parser sees.
      auto j = nlohmann::json::parse(line.begin(), line.end(), nullptr, false);
      MQ_FUZZ_CHECK(!j.is_discarded() && j.is_object(), "accepted a line that is not a JSON object");
      if (auto b = j.find("body"); b != j.end())
        MQ_FUZZ_CHECK(b->get<std::string>() == item.body, "body differs");
      if (item.props)
        for (auto& [k, v] : *item.props) MQ_FUZZ_CHECK(!k.empty(), "empty property name accepted");
    } else {
      MQ_FUZZ_CHECK(!st.message().empty(), "error without a message");
    }
  }

  // base64: decode what decodes, and encode/decode round trips.
  auto d = base64_decode(in);
  if (d) MQ_FUZZ_CHECK(base64_encode(*d) == in, "base64 decode accepted a non-canonical text");
  auto back = base64_decode(base64_encode(in));
  MQ_FUZZ_CHECK(back && *back == in, "base64 round trip failed");

  // The reader over a file holding the input.
  int fd = memfd_create("fuzz-input", MFD_CLOEXEC);
  if (fd < 0) return 0;
  size_t off = 0;
  while (off < in.size()) {
    ssize_t n = ::write(fd, in.data() + off, in.size() - off);
    if (n <= 0) break;
    off += static_cast<size_t>(n);
  }
  (void)::lseek(fd, 0, SEEK_SET);
  InputMode mode = static_cast<InputMode>(sel % 4);
  size_t max_item = 1 + (sel >> 2) * 7;  // small limits reach the too-long paths
  InputReader reader(fd, mode, max_item);
  InputItem item;
  uint64_t items = 0, last_line = 0;
  size_t body_bytes = 0;
  while (reader.next(item)) {
    ++items;
    MQ_FUZZ_CHECK(item.line > last_line, "line numbers go {} -> {}", last_line, item.line);
    last_line = item.line;
    if (item.error.is_ok() && mode != InputMode::json)
      MQ_FUZZ_CHECK(item.body.size() <= max_item, "item of {} bytes over the limit {}", item.body.size(), max_item);
    body_bytes += item.body.size();
    MQ_FUZZ_CHECK(items <= in.size() + 1, "more items than bytes");
  }
  MQ_FUZZ_CHECK(reader.status().is_ok(), "read error on a memfd: {}", reader.status().message());
  if (mode != InputMode::json) MQ_FUZZ_CHECK(body_bytes <= in.size(), "more body bytes than input");
  ::close(fd);
  return 0;
}

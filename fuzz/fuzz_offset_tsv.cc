// mq-offset import input (app::parse_offset_tsv): every line is either
// accepted with valid fields or reported once, and never both.
#include "app/offset.h"
#include "fuzz_util.h"
#include "util/parse.h"

using namespace mq;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  std::string_view in = fuzz::as_view(data, size);
  std::vector<app::OffsetLine> lines;
  std::vector<std::string> errors;
  app::parse_offset_tsv(in, lines, errors);
  size_t newlines = static_cast<size_t>(std::count(in.begin(), in.end(), '\n'));
  MQ_FUZZ_CHECK(lines.size() + errors.size() <= newlines + 1, "{} lines + {} errors from {} newlines",
                lines.size(), errors.size(), newlines);
  for (auto& l : lines) {
    MQ_FUZZ_CHECK(validate_group(l.group).is_ok(), "bad group '{}' accepted", l.group);
    MQ_FUZZ_CHECK(validate_topic(l.topic, true).is_ok(), "bad topic '{}' accepted", l.topic);
    MQ_FUZZ_CHECK(l.queue <= 65535 && l.offset >= 0, "queue {} offset {}", l.queue, l.offset);
    MQ_FUZZ_CHECK(l.broker.find('\t') == std::string::npos && l.broker.find('\n') == std::string::npos,
                  "broker field '{}'", l.broker);
  }
  for (auto& e : errors) MQ_FUZZ_CHECK(e.rfind("line ", 0) == 0, "error without a line number: {}", e);
  // What export writes, import reads back.
  std::string out;
  for (auto& l : lines) out += fmt::format("{}\t{}\t{}\t{}\t{}\n", l.group, l.topic, l.broker, l.queue, l.offset);
  std::vector<app::OffsetLine> again;
  std::vector<std::string> errors2;
  app::parse_offset_tsv(out, again, errors2);
  MQ_FUZZ_CHECK(errors2.empty() && again.size() == lines.size(), "exported lines do not import back");
  for (size_t i = 0; i < lines.size(); ++i)
    MQ_FUZZ_CHECK(again[i].group == lines[i].group && again[i].topic == lines[i].topic &&
                      again[i].broker == lines[i].broker && again[i].queue == lines[i].queue &&
                      again[i].offset == lines[i].offset,
                  "line {} changed on the way back", i + 1);
  return 0;
}

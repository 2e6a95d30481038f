// Wire frames: the input is a byte stream as a peer could send it (after one
// steering byte that picks how it is cut into reads). It goes through
// FrameDecoder twice, whole and in small reads through prepare()/commit() and
// feed(); both must give the same frames and the same end state. Every frame's
// payload is decoded as its receiver would (fuzz/payloads.h).
#include <cstring>

#include "fuzz_util.h"
#include "payloads.h"

using namespace mq;
using namespace mq::protocol;

namespace {

struct Outcome {
  std::vector<Frame> frames;
  FrameDecoder::State end = FrameDecoder::State::need_more;
};

void drain(FrameDecoder& d, Outcome& o) {
  for (;;) {
    Frame f;
    auto st = d.next(f);
    if (st == FrameDecoder::State::frame) {
      MQ_FUZZ_CHECK(f.payload.size() + kFrameHeaderSize - 4 == f.header.length, "payload {} vs length {}",
                    f.payload.size(), f.header.length);
      o.frames.push_back(std::move(f));
      continue;
    }
    o.end = st;
    if (st == FrameDecoder::State::error) MQ_FUZZ_CHECK(!d.error().empty(), "error state without a message");
    return;
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  fuzz::quiet();
  fuzz::Steer steer(fuzz::as_view(data, size));
  uint8_t cut = steer.u8();
  uint32_t max_frame = 16 + (static_cast<uint32_t>(steer.u8()) << 8);  // small limits reach the check
  std::string_view stream = steer.rest();

  Outcome whole;
  {
    FrameDecoder d(max_frame);
    d.feed(stream);
    drain(d, whole);
  }
  Outcome pieces;
  {
    FrameDecoder d(max_frame);
    size_t pos = 0, i = 0;
    while (pos < stream.size() && pieces.end != FrameDecoder::State::error) {
      size_t n = std::min<size_t>(stream.size() - pos, 1 + ((cut + i * 7) % 23));
      if (i++ % 2 == 0) {
        char* at = d.prepare(n + 5);  // a read may return fewer bytes than asked
        std::memcpy(at, stream.data() + pos, n);
        d.commit(n);
      } else {
        d.feed(stream.substr(pos, n));
      }
      pos += n;
      drain(d, pieces);
    }
  }
  MQ_FUZZ_CHECK(whole.frames.size() == pieces.frames.size(), "{} frames whole, {} in pieces",
                whole.frames.size(), pieces.frames.size());
  for (size_t i = 0; i < whole.frames.size(); ++i) {
    auto& a = whole.frames[i];
    auto& b = pieces.frames[i];
    MQ_FUZZ_CHECK(a.payload == b.payload && a.header.type == b.header.type &&
                      a.header.request_id == b.header.request_id && a.header.flags == b.header.flags,
                  "frame {} differs", i);
  }
  if (!stream.empty()) MQ_FUZZ_CHECK(whole.end == pieces.end, "end states differ");

  for (auto& f : whole.frames) {
    fuzz::decode_payload(f.header.type, (f.header.flags & kFlagResponse) != 0, f.payload);
    // Round trip of the header.
    std::string again;
    encode_frame(again, f.header.type, f.header.flags, f.header.request_id, f.header.status, f.payload);
    FrameDecoder d(max_frame);
    d.feed(again);
    Frame g;
    MQ_FUZZ_CHECK(d.next(g) == FrameDecoder::State::frame && g.payload == f.payload,
                  "re-encoded frame does not decode");
  }
  return 0;
}

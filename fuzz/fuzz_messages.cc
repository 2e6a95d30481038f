// Request and response payloads without the frame around them: the first
// byte picks the type (low 7 bits) and the direction (high bit = response).
#include "fuzz_util.h"
#include "payloads.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mq::fuzz::quiet();
  mq::fuzz::Steer steer(mq::fuzz::as_view(data, size));
  uint8_t t = steer.u8();
  auto type = static_cast<mq::protocol::Type>(t & 0x7f);
  mq::fuzz::decode_payload(type, (t & 0x80) != 0, steer.rest());
  return 0;
}

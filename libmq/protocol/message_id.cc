#include "protocol/message_id.h"

#include <sys/random.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <random>

namespace mq::protocol {
namespace {

struct Seed {
  uint8_t nonce[6];
  uint32_t counter_start;
  Seed() {
    uint8_t buf[10];
    if (getrandom(buf, sizeof buf, 0) != static_cast<ssize_t>(sizeof buf)) {
      std::random_device rd;
      for (auto& b : buf) b = static_cast<uint8_t>(rd());
    }
    std::memcpy(nonce, buf, 6);
    std::memcpy(&counter_start, buf + 6, 4);
  }
};

}  // namespace

storage::MessageId new_message_id() {
  return new_message_id(
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

storage::MessageId new_message_id(int64_t now_ms) {
  static const Seed seed;
  static std::atomic<uint32_t> counter{seed.counter_start};
  static const uint16_t pid = static_cast<uint16_t>(::getpid());
  storage::MessageId id;
  std::memcpy(id.data(), seed.nonce, 6);
  uint32_t secs = static_cast<uint32_t>(now_ms / 1000);
  for (int i = 0; i < 4; ++i) id[6 + i] = static_cast<uint8_t>(secs >> (24 - 8 * i));
  id[10] = static_cast<uint8_t>(pid >> 8);
  id[11] = static_cast<uint8_t>(pid);
  uint32_t c = counter.fetch_add(1, std::memory_order_relaxed);
  for (int i = 0; i < 4; ++i) id[12 + i] = static_cast<uint8_t>(c >> (24 - 8 * i));
  return id;
}

}  // namespace mq::protocol

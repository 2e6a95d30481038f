// Message ids (message_id.h): the layout, and uniqueness within a process.
#include <catch2/catch.hpp>

#include <chrono>
#include <set>

#include "protocol/message_id.h"

using namespace mq;

namespace {

uint32_t secs_of(const storage::MessageId& id) {
  uint32_t s = 0;
  for (int i = 6; i < 10; ++i) s = (s << 8) | id[i];
  return s;
}

uint32_t counter_of(const storage::MessageId& id) {
  uint32_t c = 0;
  for (int i = 12; i < 16; ++i) c = (c << 8) | id[i];
  return c;
}

}  // namespace

TEST_CASE("a message id holds the seconds of the time it was made", "[protocol]") {
  // From a time the caller read (the producer reads the clock once per message for
  // the id and the born time).
  auto given = protocol::new_message_id(int64_t{1764000123999});
  CHECK(secs_of(given) == 1764000123u);
  // From the clock.
  auto before = std::chrono::duration_cast<std::chrono::seconds>(
                    std::chrono::system_clock::now().time_since_epoch()).count();
  auto now = protocol::new_message_id();
  auto after = std::chrono::duration_cast<std::chrono::seconds>(
                   std::chrono::system_clock::now().time_since_epoch()).count();
  CHECK(secs_of(now) >= before);
  CHECK(secs_of(now) <= after);
  // The same process prefix, the next counter value.
  CHECK(std::equal(given.begin(), given.begin() + 6, now.begin()));
  CHECK(now[10] == given[10]);
  CHECK(now[11] == given[11]);
  CHECK(counter_of(now) == counter_of(given) + 1);
}

TEST_CASE("message ids made at the same time differ", "[protocol]") {
  std::set<storage::MessageId> seen;
  for (int i = 0; i < 10000; ++i) seen.insert(protocol::new_message_id(int64_t{1764000123000}));
  CHECK(seen.size() == 10000);
}

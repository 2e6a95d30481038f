// Message ids: 16 bytes shown as 32 hex characters, unique across hosts,
// processes and time: 6 random bytes drawn once per process (host and process
// identity), 4 bytes of seconds since the epoch, 2 bytes pid low bits, and a
// 4-byte counter started at a random value. Assigned once per message by the
// producer and kept across retries.
#pragma once

#include "storage/record.h"

namespace mq::protocol {

storage::MessageId new_message_id();
// The same with the seconds taken from `now_ms` (ms since the epoch), for a caller that
// read the clock already.
storage::MessageId new_message_id(int64_t now_ms);

}  // namespace mq::protocol

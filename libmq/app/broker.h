// mq-broker: serve one data directory until SIGTERM/SIGINT.
#pragma once

#include <cstdint>
#include <string>

#include "cli/common.h"
#include "util/parse.h"
#include "util/status.h"

namespace mq::app {

struct BrokerOptions {
  cli::CommonOptions common;
  std::string data;  // empty: $MQ_DATA, else ${XDG_DATA_HOME:-$HOME/.local/share}/mq
  std::string listen = "127.0.0.1:9876";
  std::string flush = "sync";  // sync | async
  Millis flush_interval{500};
  Millis flush_timeout{3000};  // flush sync: answer FLUSH_DISK_TIMEOUT when fdatasync is later
  std::string role = "master";  // master | slave
  std::string master;           // HOST:PORT, for a slave
  std::string replication = "async";  // sync | async
  Millis replication_timeout{3000};
  uint32_t queues = 4;
  uint64_t max_message_size = 4u << 20;
  Millis retention{72ll * 3600 * 1000};
  uint64_t segment_size = 1ull << 30;
  std::string delay_levels;  // empty: the default levels
  bool no_auto_create = false;
  std::string ready_file;
  std::string log_level;  // empty: from -q/-v
  size_t max_connections = 10000;
  unsigned io_threads = 0;     // 0: 1 on up to 2 cores, else half the cores (at most 4)
  size_t max_topics = 10000;  // user topics auto-create may reach (reserved ones exempt)
  uint64_t max_frame = 64u << 20;  // largest request frame
  uint64_t max_pending = 16u << 20;         // unwritten answers per connection
  uint64_t max_pending_total = 256u << 20;  // unwritten answers of all connections
  std::string auth;                // --auth FILE: users and permissions
  std::string tls_cert, tls_key;   // serve TLS
  // A slave's way to its master: common.tls_ca and common.credentials
  // (or MQ_USER/MQ_PASSWORD), as for clients.
};

// Checks option values and combinations (invalid_argument: exit 2).
Status validate(const BrokerOptions& opt);
// The data directory the options select.
std::string data_dir(const BrokerOptions& opt);
// Runs the broker until a signal asks it to stop. OK after a clean stop.
Status broker(const BrokerOptions& opt);

}  // namespace mq::app

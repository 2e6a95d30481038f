// DIR/checkpoint: the log position up to which every queue index entry is
// durable, and whether the store was closed cleanly. Replaced atomically
// (temp file, sync, rename, directory sync). Text, one line:
//   mq-checkpoint 1 <log_pos> <clean 0|1> <crc32c of the text before, hex>
//   mq-checkpoint 2 <log_pos> <clean 0|1> <queues digest, hex> <crc32c ..., hex>
#pragma once

#include <cstdint>
#include <optional>

#include "storage/file_system.h"

namespace mq::storage {

struct Checkpoint {
  uint64_t log_pos = 0;
  bool clean = false;
  // Clean closes (version 2): a digest of every queue's entry count, so that an
  // index file shortened or replaced since is not trusted (the log is scanned).
  std::optional<uint64_t> queues_digest;
};

Status write_checkpoint(FileSystem& fsys, const fs::path& path, const Checkpoint& c);
// nullopt when the file is missing or not a valid checkpoint (then `why` says why).
std::optional<Checkpoint> read_checkpoint(FileSystem& fsys, const fs::path& path,
                                          std::string* why = nullptr);

}  // namespace mq::storage

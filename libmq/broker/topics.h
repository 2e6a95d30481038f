// The broker's topic registry: which topics exist and how many queues each
// has. Persisted as DIR/topics.json, replaced atomically on every change:
//
//   {"topics": {"orders": {"queues": 4}, "%RETRY%billing": {"queues": 1}}}
//
// Thread-safe. A created topic is durable when ensure() returns.
//
// The --max-topics limit counts user topics only: the broker's own (names
// starting with '%': %RETRY%G, %DLQ%G, %SCHEDULE%) are neither counted nor
// refused, so a retry or a dead letter never fails on the limit. Topics copied
// from a master (slaves) and found in the store at start (adopt) are not
// refused either: the limit is on what producers may create.
#pragma once

#include <cstddef>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/status.h"

namespace mq::broker {

inline constexpr uint32_t kMaxQueues = 1024;
inline constexpr const char* kTopicsFile = "topics.json";
inline constexpr size_t kNoTopicLimit = static_cast<size_t>(-1);

class TopicRegistry {
 public:
  // Reads DIR/topics.json; a missing file is an empty registry. A file that
  // does not parse is corruption naming the file and the cause.
  static Result<std::unique_ptr<TopicRegistry>> open(const std::filesystem::path& dir);

  // Queue count of `topic`, nullopt when it does not exist.
  std::optional<uint32_t> queues(std::string_view topic) const;
  // The topic's queue count, creating it with `queues` queues (and writing
  // the file) when it does not exist yet. The name is not validated here.
  // A new user topic when `max_user_topics` exist already is refused with
  // limit_reached naming the topic and the limit (reserved names never are).
  Result<uint32_t> ensure(std::string_view topic, uint32_t queues,
                          size_t max_user_topics = kNoTopicLimit);
  // Topics whose names do not start with '%' (what --max-topics counts).
  size_t user_topics() const;
  // Every topic, sorted by name.
  std::vector<std::pair<std::string, uint32_t>> list() const;
  // Makes the registry cover every (topic, queue) the store has an index for
  // (a registry file older than the log, e.g. after a crash): unknown topics
  // get max(default_queues, highest queue + 1) queues; known ones grow to fit.
  Status adopt(const std::vector<std::pair<std::string, uint32_t>>& store_queues,
               uint32_t default_queues);

 private:
  explicit TopicRegistry(std::filesystem::path file) : file_(std::move(file)) {}
  Status save_locked() const;

  std::filesystem::path file_;
  mutable std::mutex mu_;
  std::map<std::string, uint32_t, std::less<>> topics_;
  size_t user_topics_ = 0;  // entries of topics_ not starting with '%'
};

}  // namespace mq::broker

#include "broker/topics.h"

#include <spdlog/spdlog.h>

#include <nlohmann/json.hpp>

#include <system_error>

#include "util/file.h"
#include "util/parse.h"

namespace mq::broker {

using json = nlohmann::json;

namespace {

bool is_reserved(std::string_view name) { return !name.empty() && name.front() == '%'; }

// Names in the file: user topics follow validate_topic; internal ones (the
// broker's own, '%' first: %RETRY%g, %DLQ%g, %SCHEDULE%) only need to be
// plain ASCII of a sane length, since the broker made them itself.
Status validate_stored_name(std::string_view name) {
  if (name.empty() || name.front() != '%') return validate_topic(name);
  if (name.size() > 255) return Status::invalid(fmt::format("internal topic name of {} bytes", name.size()));
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == '%';
    if (!ok) return Status::invalid(fmt::format("invalid internal topic name '{}'", name));
  }
  return Status::ok();
}

}  // namespace

Result<std::unique_ptr<TopicRegistry>> TopicRegistry::open(const std::filesystem::path& dir) {
  auto file = dir / kTopicsFile;
  std::unique_ptr<TopicRegistry> reg(new TopicRegistry(file));
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) return reg;
  auto text = read_file(file);
  if (!text) return text.status();
  auto bad = [&](std::string_view why) {
    return Status::corruption(fmt::format("topics file {}: {}", file.string(), why));
  };
  json doc = json::parse(*text, nullptr, false);
  if (doc.is_discarded()) return bad("not valid JSON");
  if (!doc.is_object() || !doc.contains("topics") || !doc["topics"].is_object())
    return bad("expected an object with a \"topics\" object");
  for (auto& [name, cfg] : doc["topics"].items()) {
    // Earlier versions registered these (a send to them failed) without storing anything.
    if (name == "." || name == "..") {
      spdlog::warn("topics file {}: dropping topic '{}' (not a usable name, it never held messages)", file.string(), name);
      continue;
    }
    if (auto st = validate_stored_name(name); !st) return bad(st.message());
    if (!cfg.is_object() || !cfg.contains("queues") || !cfg["queues"].is_number_unsigned())
      return bad(fmt::format("topic {}: expected {{\"queues\": N}}", name));
    auto q = cfg["queues"].get<uint64_t>();
    if (q < 1 || q > kMaxQueues)
      return bad(fmt::format("topic {}: {} queues is outside 1..{}", name, q, kMaxQueues));
    reg->topics_.emplace(name, static_cast<uint32_t>(q));
    if (!is_reserved(name)) ++reg->user_topics_;
  }
  return reg;
}

std::optional<uint32_t> TopicRegistry::queues(std::string_view topic) const {
  std::lock_guard lock(mu_);
  auto it = topics_.find(topic);
  if (it == topics_.end()) return std::nullopt;
  return it->second;
}

Result<uint32_t> TopicRegistry::ensure(std::string_view topic, uint32_t queues,
                                       size_t max_user_topics) {
  std::lock_guard lock(mu_);
  auto it = topics_.find(topic);
  if (it != topics_.end()) return it->second;
  if (queues < 1 || queues > kMaxQueues)
    return Status::invalid(fmt::format("topic {}: {} queues is outside 1..{}", topic, queues, kMaxQueues));
  const bool user = !is_reserved(topic);
  // Checked under the lock: concurrent creations cannot overshoot the limit.
  if (user && user_topics_ >= max_user_topics)
    return Status::limit_reached(fmt::format(
        "topic {} not created: the broker holds {} topics, its limit (--max-topics {})", topic,
        user_topics_, max_user_topics));
  auto [pos, inserted] = topics_.emplace(std::string(topic), queues);
  if (auto st = save_locked(); !st) {
    topics_.erase(pos);  // not durable: not created
    return st.with_context(fmt::format("create topic {}", topic));
  }
  if (user) ++user_topics_;
  return queues;
}

size_t TopicRegistry::user_topics() const {
  std::lock_guard lock(mu_);
  return user_topics_;
}

std::vector<std::pair<std::string, uint32_t>> TopicRegistry::list() const {
  std::lock_guard lock(mu_);
  return {topics_.begin(), topics_.end()};
}

Status TopicRegistry::adopt(const std::vector<std::pair<std::string, uint32_t>>& store_queues,
                            uint32_t default_queues) {
  std::lock_guard lock(mu_);
  bool changed = false;
  for (auto& [topic, queue] : store_queues) {
    uint32_t need = std::min<uint32_t>(queue + 1, kMaxQueues);
    auto it = topics_.find(topic);
    if (it == topics_.end()) {
      topics_.emplace(topic, std::max(default_queues, need));
      if (!is_reserved(topic)) ++user_topics_;
      changed = true;
    } else if (it->second < need) {
      it->second = need;
      changed = true;
    }
  }
  return changed ? save_locked() : Status::ok();
}

Status TopicRegistry::save_locked() const {
  json doc;
  doc["topics"] = json::object();
  for (auto& [name, q] : topics_) doc["topics"][name] = {{"queues", q}};
  // Topic names are validated ASCII, so dump() cannot meet invalid UTF-8.
  return write_file_atomic(file_, doc.dump(2) + "\n");
}

}  // namespace mq::broker

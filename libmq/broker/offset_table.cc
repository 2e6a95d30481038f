#include "broker/offset_table.h"

#include <nlohmann/json.hpp>

#include <system_error>

#include "util/file.h"

namespace mq::broker {

Result<std::unique_ptr<OffsetTable>> OffsetTable::open(std::filesystem::path file) {
  std::unique_ptr<OffsetTable> t(new OffsetTable(file));
  std::error_code ec;
  if (!std::filesystem::exists(file, ec)) {
    t->missing_ = true;
    return t;
  }
  auto text = read_file(file);
  if (!text) return text.status();
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object() || !j.contains("offsets") || !j["offsets"].is_array())
    return Status::corruption(fmt::format("{}: not a valid offsets file", file.string()));
  for (auto& e : j["offsets"]) {
    if (!e.is_object() || !e.contains("group") || !e.contains("topic") || !e.contains("queue") ||
        !e.contains("offset") || !e["group"].is_string() || !e["topic"].is_string() ||
        !e["queue"].is_number_unsigned() || e["queue"].get<uint64_t>() > UINT32_MAX ||
        !e["offset"].is_number_integer() ||
        (e.contains("epoch") && (!e["epoch"].is_number_unsigned() || e["epoch"].get<uint64_t>() > UINT32_MAX)))
      return Status::corruption(fmt::format("{}: malformed entry {}", file.string(), e.dump()));
    Entry en;
    en.offset = e["offset"].get<int64_t>();
    en.epoch = e.value("epoch", 0u);
    t->table_[{e["group"].get<std::string>(), e["topic"].get<std::string>(), e["queue"].get<uint32_t>()}] = en;
  }
  t->saved_ = t->table_;
  return t;
}

OffsetTable::Entry OffsetTable::get(const std::string& group, const protocol::QueueRef& q) const {
  std::lock_guard lk(mu_);
  auto it = table_.find({group, q.topic, q.queue});
  return it == table_.end() ? Entry{} : it->second;
}

protocol::CommitResult OffsetTable::commit(const std::string& group, const protocol::QueueRef& q,
                                           int64_t offset, uint32_t epoch, bool init_only) {
  std::lock_guard lk(mu_);
  auto& e = table_[{group, q.topic, q.queue}];
  protocol::CommitResult r;
  bool ok = init_only ? e.offset < 0 : (e.epoch == epoch && offset >= 0);
  if (ok && e.offset != offset) {
    e.offset = offset;
    ++version_;
  }
  r.accepted = ok;
  r.offset = e.offset;
  r.epoch = e.epoch;
  return r;
}

protocol::ResetResult OffsetTable::reset(const std::string& group, const protocol::QueueRef& q,
                                         int64_t expected, int64_t new_offset, bool dry_run) {
  std::lock_guard lk(mu_);
  Key k{group, q.topic, q.queue};
  auto it = table_.find(k);
  Entry cur = it == table_.end() ? Entry{} : it->second;
  protocol::ResetResult r;
  r.old_offset = cur.offset;
  r.new_offset = new_offset;
  if (expected >= 0 && cur.offset != expected) {
    r.applied = false;
    r.new_offset = cur.offset;
    return r;
  }
  r.applied = true;
  if (dry_run) return r;
  auto& e = table_[k];
  e.offset = new_offset;
  ++e.epoch;
  ++version_;
  return r;
}

void OffsetTable::clamp(const protocol::QueueRef& q, int64_t max) {
  std::lock_guard lk(mu_);
  for (auto& [k, e] : table_)
    if (std::get<1>(k) == q.topic && std::get<2>(k) == q.queue && e.offset > max) {
      e.offset = max;
      ++version_;
    }
  // Offsets past the log are not shown either (the clamped table is persisted next).
  for (auto& [k, e] : saved_)
    if (std::get<1>(k) == q.topic && std::get<2>(k) == q.queue && e.offset > max) e.offset = max;
}

std::vector<std::string> OffsetTable::groups() const {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (auto& [k, e] : table_)
    if (out.empty() || out.back() != std::get<0>(k)) out.push_back(std::get<0>(k));
  return out;
}

namespace {

template <class Map>
std::vector<protocol::OffsetEntry> group_entries(const Map& m, const std::string& group) {
  std::vector<protocol::OffsetEntry> out;
  for (auto it = m.lower_bound({group, "", 0}); it != m.end() && std::get<0>(it->first) == group; ++it)
    out.push_back({{std::get<1>(it->first), std::get<2>(it->first)}, it->second.offset, it->second.epoch});
  return out;
}

}  // namespace

std::vector<protocol::OffsetEntry> OffsetTable::entries(const std::string& group) const {
  std::lock_guard lk(mu_);
  return group_entries(table_, group);
}

std::vector<protocol::OffsetEntry> OffsetTable::saved_entries(const std::string& group) const {
  std::lock_guard lk(mu_);
  return group_entries(saved_, group);
}

Status OffsetTable::persist(bool always) {
  std::lock_guard plk(persist_mu_);
  std::string text;
  uint64_t v;
  std::map<Key, Entry> snap;
  {
    std::lock_guard lk(mu_);
    if (version_ == persisted_version_ && !always) return Status::ok();
    v = version_;
    snap = table_;
    nlohmann::json arr = nlohmann::json::array();
    for (auto& [k, e] : table_) {
      if (e.offset < 0 && e.epoch == 0) continue;
      arr.push_back({{"group", std::get<0>(k)}, {"topic", std::get<1>(k)}, {"queue", std::get<2>(k)},
                     {"offset", e.offset}, {"epoch", e.epoch}});
    }
    text = nlohmann::json{{"version", 1}, {"offsets", arr}}.dump(1) + "\n";
  }
  auto st = write_file_atomic(file_, text);
  if (!st) return st.with_context("persist consumer offsets");
  std::lock_guard lk(mu_);
  if (persisted_version_ < v) {
    persisted_version_ = v;
    saved_ = std::move(snap);
  }
  return Status::ok();
}

uint64_t OffsetTable::version() const {
  std::lock_guard lk(mu_);
  return version_;
}

std::vector<protocol::GroupOffset> OffsetTable::snapshot() const {
  std::lock_guard lk(mu_);
  std::vector<protocol::GroupOffset> out;
  out.reserve(table_.size());
  for (auto& [k, e] : table_) {
    if (e.offset < 0 && e.epoch == 0) continue;  // looked up, never set
    out.push_back({std::get<0>(k), {std::get<1>(k), std::get<2>(k)}, e.offset, e.epoch});
  }
  return out;
}

OffsetTable::Entry OffsetTable::reconcile(Entry local, Entry remote) {
  if (remote.epoch != local.epoch) return remote.epoch > local.epoch ? remote : local;
  return remote.offset > local.offset ? remote : local;
}

size_t OffsetTable::merge(const std::vector<protocol::GroupOffset>& remote) {
  std::lock_guard lk(mu_);
  size_t changed = 0;
  for (auto& r : remote) {
    if (r.offset < 0 && r.epoch == 0) continue;
    auto& e = table_[{r.group, r.q.topic, r.q.queue}];
    Entry m = reconcile(e, Entry{r.offset, r.epoch});
    if (m.offset != e.offset || m.epoch != e.epoch) {
      e = m;
      ++changed;
    }
  }
  if (changed) ++version_;
  return changed;
}

std::vector<protocol::GroupOffset> offsets_ahead(const std::vector<protocol::GroupOffset>& local,
                                                 const std::vector<protocol::GroupOffset>& remote) {
  using Key = std::tuple<std::string_view, std::string_view, uint32_t>;
  std::map<Key, OffsetTable::Entry> seen;
  for (auto& r : remote) seen[{r.group, r.q.topic, r.q.queue}] = {r.offset, r.epoch};
  std::vector<protocol::GroupOffset> out;
  for (auto& l : local) {
    auto it = seen.find({l.group, l.q.topic, l.q.queue});
    OffsetTable::Entry there = it == seen.end() ? OffsetTable::Entry{} : it->second;
    auto m = OffsetTable::reconcile(there, {l.offset, l.epoch});
    if (m.offset != there.offset || m.epoch != there.epoch) out.push_back(l);
  }
  return out;
}

}  // namespace mq::broker

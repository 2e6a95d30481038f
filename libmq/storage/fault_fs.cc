#include "storage/fault_fs.h"

#include <algorithm>
#include <cerrno>
#include <cstring>

namespace mq::storage {

namespace {

class FaultFile final : public File {
 public:
  FaultFile(FaultFileSystem* fsys, std::shared_ptr<FaultFileSystem::Node> node, uint64_t gen,
            fs::path path)
      : fs_(fsys), node_(std::move(node)), gen_(gen), path_(std::move(path)) {}
  Result<size_t> pwrite(std::string_view data, uint64_t offset) override {
    return fs_->do_pwrite(node_, gen_, path_, data, offset);
  }
  Result<size_t> pread(char* buf, size_t n, uint64_t offset) const override {
    return fs_->do_pread(node_, gen_, path_, buf, n, offset);
  }
  Status sync() override { return fs_->do_sync(node_, gen_, path_); }
  Status truncate(uint64_t size) override { return fs_->do_truncate(node_, gen_, path_, size); }
  Result<bool> punch_hole(uint64_t offset, uint64_t len) override {
    return fs_->do_punch_hole(node_, gen_, path_, offset, len);
  }
  Result<bool> reserve(uint64_t offset, uint64_t len) override {
    return fs_->do_reserve(node_, gen_, path_, offset, len);
  }
  Result<uint64_t> size() const override { return fs_->do_size(node_, gen_, path_); }
  const fs::path& path() const override { return path_; }

 private:
  FaultFileSystem* fs_;
  std::shared_ptr<FaultFileSystem::Node> node_;
  uint64_t gen_;
  fs::path path_;
};

std::string parent_of(const std::string& p) {
  std::string s = fs::path(p).parent_path().string();
  return s.empty() ? "." : s;
}

}  // namespace

std::string FaultFileSystem::key(const fs::path& p) {
  std::string s = p.lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

Status FaultFileSystem::check_up(const fs::path& p) const {
  if (down_) return Status::from_errno(p.string() + " (crashed)", EIO);
  return Status::ok();
}

Status FaultFileSystem::check_gen(uint64_t gen, const fs::path& p) const {
  MQ_RETURN_IF_ERROR(check_up(p));
  if (gen != generation_) return Status::from_errno(p.string() + " (handle from before a crash)", EIO);
  return Status::ok();
}

Result<std::unique_ptr<File>> FaultFileSystem::open(const fs::path& path, bool create) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_up(path));
  std::string k = key(path);
  auto it = live_.find(k);
  if (it == live_.end()) {
    if (!create) return Status::from_errno(path.string(), ENOENT);
    if (!dirs_.count(parent_of(k))) return Status::from_errno(path.string(), ENOENT);
    it = live_.emplace(k, std::make_shared<Node>()).first;
  }
  return std::unique_ptr<File>(std::make_unique<FaultFile>(this, it->second, generation_, path));
}

Status FaultFileSystem::remove(const fs::path& path) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_up(path));
  if (live_.erase(key(path)) == 0) return Status::from_errno("remove " + path.string(), ENOENT);
  return Status::ok();
}

Status FaultFileSystem::rename(const fs::path& from, const fs::path& to) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_up(from));
  auto it = live_.find(key(from));
  if (it == live_.end()) return Status::from_errno("rename " + from.string(), ENOENT);
  auto node = it->second;
  live_.erase(it);
  live_[key(to)] = std::move(node);
  return Status::ok();
}

Result<std::vector<std::string>> FaultFileSystem::list(const fs::path& dir) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_up(dir));
  std::string d = key(dir);
  if (!dirs_.count(d)) return Status::from_errno(dir.string(), ENOENT);
  std::vector<std::string> names;
  for (auto& [p, n] : live_)
    if (parent_of(p) == d) names.push_back(fs::path(p).filename().string());
  for (auto& p : dirs_)
    if (p != d && parent_of(p) == d) names.push_back(fs::path(p).filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

bool FaultFileSystem::exists(const fs::path& path) {
  std::lock_guard lk(mu_);
  std::string k = key(path);
  return live_.count(k) || dirs_.count(k);
}

bool FaultFileSystem::is_dir(const fs::path& path) {
  std::lock_guard lk(mu_);
  return dirs_.count(key(path)) > 0;
}

Status FaultFileSystem::mkdirs(const fs::path& dir) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_up(dir));
  fs::path p = fs::path(key(dir));
  while (!p.empty() && p != p.root_path()) {
    if (live_.count(p.string())) return Status::from_errno("mkdir " + dir.string(), EEXIST);
    dirs_.insert(p.string());
    p = p.parent_path();
  }
  return Status::ok();
}

Status FaultFileSystem::sync_dir(const fs::path& dir) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_up(dir));
  std::string d = key(dir);
  if (!dirs_.count(d)) return Status::from_errno(dir.string(), ENOENT);
  if (dir_open_faults_ > 0 &&
      (dir_open_fault_path_.empty() || d.find(dir_open_fault_path_) != std::string::npos)) {
    --dir_open_faults_;
    return Status::from_errno(dir.string(), EMFILE);
  }
  if (sync_fault_ != SyncFault::off &&
      (sync_fault_path_.empty() || d.find(sync_fault_path_) != std::string::npos)) {
    if (sync_fault_ == SyncFault::once) sync_fault_ = SyncFault::off;
    return Status::from_errno("fsync " + dir.string(), EIO);
  }
  std::erase_if(durable_entries_, [&](auto& e) { return parent_of(e.first) == d; });
  for (auto& [p, n] : live_)
    if (parent_of(p) == d) durable_entries_[p] = n;
  ++syncs_;
  return Status::ok();
}

void FaultFileSystem::restart() {
  std::lock_guard lk(mu_);
  down_ = false;
}

void FaultFileSystem::crash() {
  std::lock_guard lk(mu_);
  ++generation_;
  down_ = true;
  std::map<std::string, std::shared_ptr<Node>> fresh;
  for (auto& [p, n] : durable_entries_) {
    auto node = std::make_shared<Node>();
    node->current = n->durable;
    node->durable = n->durable;
    fresh[p] = node;
  }
  durable_entries_ = fresh;
  live_ = std::move(fresh);
}

void FaultFileSystem::set_write_budget(std::optional<uint64_t> bytes) {
  std::lock_guard lk(mu_);
  write_budget_ = bytes;
}

void FaultFileSystem::set_file_limit(std::optional<uint64_t> size, std::string path_contains) {
  std::lock_guard lk(mu_);
  file_limit_ = size;
  file_limit_path_ = std::move(path_contains);
}

void FaultFileSystem::fail_sync(SyncFault mode, std::string path_contains) {
  std::lock_guard lk(mu_);
  sync_fault_ = mode;
  sync_fault_path_ = std::move(path_contains);
}

void FaultFileSystem::fail_dir_open(int times, std::string path_contains) {
  std::lock_guard lk(mu_);
  dir_open_faults_ = times;
  dir_open_fault_path_ = std::move(path_contains);
}

void FaultFileSystem::hold_syncs(bool on, std::string path_contains) {
  {
    std::lock_guard lk(mu_);
    hold_syncs_ = on;
    hold_path_ = std::move(path_contains);
  }
  hold_cv_.notify_all();
}

void FaultFileSystem::set_sync_delay(std::chrono::microseconds d) {
  std::lock_guard lk(mu_);
  sync_delay_ = d;
}

size_t FaultFileSystem::held_syncs() {
  std::lock_guard lk(mu_);
  return held_;
}

void FaultFileSystem::set_short_writes(bool on) {
  std::lock_guard lk(mu_);
  short_writes_ = on;
}

void FaultFileSystem::set_punch_holes(bool supported) {
  std::lock_guard lk(mu_);
  punch_holes_ = supported;
}

void FaultFileSystem::set_reserve(bool supported) {
  std::lock_guard lk(mu_);
  reserve_ = supported;
}

uint64_t FaultFileSystem::reserved(const fs::path& path) {
  std::lock_guard lk(mu_);
  auto it = live_.find(key(path));
  return it == live_.end() ? 0 : it->second->reserved;
}

std::string FaultFileSystem::content(const fs::path& path) {
  std::lock_guard lk(mu_);
  auto it = live_.find(key(path));
  return it == live_.end() ? std::string() : it->second->current;
}

void FaultFileSystem::set_content(const fs::path& path, std::string data) {
  std::lock_guard lk(mu_);
  auto it = live_.find(key(path));
  if (it == live_.end()) return;
  it->second->current = data;
  it->second->durable = std::move(data);
}

uint64_t FaultFileSystem::sync_count() {
  std::lock_guard lk(mu_);
  return syncs_;
}

uint64_t FaultFileSystem::write_count(const std::string& path_contains) {
  std::lock_guard lk(mu_);
  uint64_t n = 0;
  for (auto& [path, calls] : writes_)
    if (path.find(path_contains) != std::string::npos) n += calls;
  return n;
}

void FaultFileSystem::hold_writes(bool on, std::string path_contains) {
  {
    std::lock_guard lk(mu_);
    hold_writes_ = on;
    hold_writes_path_ = std::move(path_contains);
  }
  hold_cv_.notify_all();
}

size_t FaultFileSystem::held_writes() {
  std::lock_guard lk(mu_);
  return held_writes_;
}

void FaultFileSystem::fail_writes(bool on, std::string path_contains) {
  std::lock_guard lk(mu_);
  fail_writes_ = on;
  fail_writes_path_ = std::move(path_contains);
}

uint64_t FaultFileSystem::bytes_read(std::thread::id who, const std::string& path_contains) {
  std::lock_guard lk(mu_);
  uint64_t n = 0;
  for (auto& [k, bytes] : reads_)
    if (k.first == who && k.second.find(path_contains) != std::string::npos) n += bytes;
  return n;
}

std::vector<std::string> FaultFileSystem::files() {
  std::lock_guard lk(mu_);
  std::vector<std::string> out;
  for (auto& [p, n] : live_) out.push_back(p);
  return out;
}

Result<size_t> FaultFileSystem::do_pwrite(const std::shared_ptr<Node>& n, uint64_t gen,
                                          const fs::path& p, std::string_view data,
                                          uint64_t offset) {
  std::unique_lock lk(mu_);
  MQ_RETURN_IF_ERROR(check_gen(gen, p));
  auto held = [&] {
    return hold_writes_ && (hold_writes_path_.empty() || p.string().find(hold_writes_path_) != std::string::npos);
  };
  if (held()) {
    ++held_writes_;
    hold_cv_.wait(lk, [&] { return !held(); });
    --held_writes_;
    MQ_RETURN_IF_ERROR(check_gen(gen, p));
  }
  ++writes_[p.string()];
  if (fail_writes_ && p.string().find(fail_writes_path_) != std::string::npos)
    return Status::from_errno("write " + p.string(), EIO);
  size_t len = data.size();
  if (short_writes_ && len > 1) len = len / 2;
  // Its blocks are allocated (reserved, or bytes already there): no ENOSPC.
  bool inside = offset + len <= std::max<uint64_t>(n->reserved, n->current.size());
  if (!inside && file_limit_ && len > 0 && p.string().find(file_limit_path_) != std::string::npos) {
    if (offset >= *file_limit_) return Status::from_errno("write " + p.string(), ENOSPC);
    len = static_cast<size_t>(std::min<uint64_t>(len, *file_limit_ - offset));
  }
  if (write_budget_ && !inside) {
    if (*write_budget_ == 0 && len > 0) return Status::from_errno("write " + p.string(), ENOSPC);
    len = static_cast<size_t>(std::min<uint64_t>(len, *write_budget_));
    *write_budget_ -= len;
  }
  if (n->current.size() < offset + len) n->current.resize(offset + len, '\0');
  std::memcpy(n->current.data() + offset, data.data(), len);
  return len;
}

Result<size_t> FaultFileSystem::do_pread(const std::shared_ptr<Node>& n, uint64_t gen,
                                         const fs::path& p, char* buf, size_t len,
                                         uint64_t offset) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_gen(gen, p));
  if (offset >= n->current.size()) return size_t{0};
  size_t k = std::min<uint64_t>(len, n->current.size() - offset);
  std::memcpy(buf, n->current.data() + offset, k);
  reads_[{std::this_thread::get_id(), p.string()}] += k;
  return k;
}

Status FaultFileSystem::do_sync(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p) {
  std::unique_lock lk(mu_);
  MQ_RETURN_IF_ERROR(check_gen(gen, p));
  auto held = [&] {
    return hold_syncs_ && (hold_path_.empty() || p.string().find(hold_path_) != std::string::npos);
  };
  if (held()) {
    ++held_;
    hold_cv_.wait(lk, [&] { return !held(); });
    --held_;
    MQ_RETURN_IF_ERROR(check_gen(gen, p));  // crashed meanwhile
  }
  if (sync_delay_.count() > 0) {
    auto d = sync_delay_;
    lk.unlock();
    std::this_thread::sleep_for(d);
    lk.lock();
    MQ_RETURN_IF_ERROR(check_gen(gen, p));
  }
  if (sync_fault_ != SyncFault::off &&
      (sync_fault_path_.empty() || p.string().find(sync_fault_path_) != std::string::npos)) {
    if (sync_fault_ == SyncFault::once) sync_fault_ = SyncFault::off;
    return Status::from_errno("fdatasync " + p.string(), EIO);
  }
  n->durable = n->current;
  ++syncs_;
  return Status::ok();
}

Result<bool> FaultFileSystem::do_punch_hole(const std::shared_ptr<Node>& n, uint64_t gen,
                                            const fs::path& p, uint64_t offset, uint64_t len) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_gen(gen, p));
  if (!punch_holes_) return false;
  // Like a write: the zeros are durable after the next sync (a crash before
  // it brings the old bytes back).
  if (offset < n->current.size()) {
    size_t k = std::min<uint64_t>(len, n->current.size() - offset);
    std::memset(n->current.data() + offset, 0, k);
  }
  return true;
}

Result<bool> FaultFileSystem::do_reserve(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p,
                                         uint64_t offset, uint64_t len) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_gen(gen, p));
  if (!reserve_) return false;
  uint64_t end = offset + len;
  if (end <= n->reserved) return true;
  if (file_limit_ && p.string().find(file_limit_path_) != std::string::npos && end > *file_limit_)
    return Status::from_errno("reserve space in " + p.string(), ENOSPC);
  // New blocks: past what is reserved and past the content (its bytes hold blocks already).
  uint64_t held = std::max<uint64_t>(n->reserved, n->current.size());
  uint64_t need = end > held ? end - std::max(held, offset) : 0;
  if (write_budget_) {
    if (*write_budget_ < need) return Status::from_errno("reserve space in " + p.string(), ENOSPC);
    *write_budget_ -= need;
  }
  n->reserved = end;
  return true;
}

Status FaultFileSystem::do_truncate(const std::shared_ptr<Node>& n, uint64_t gen, const fs::path& p,
                                    uint64_t size) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_gen(gen, p));
  n->current.resize(size, '\0');
  n->reserved = std::min<uint64_t>(n->reserved, size);  // as ftruncate frees the blocks past the size
  return Status::ok();
}

Result<uint64_t> FaultFileSystem::do_size(const std::shared_ptr<Node>& n, uint64_t gen,
                                          const fs::path& p) {
  std::lock_guard lk(mu_);
  MQ_RETURN_IF_ERROR(check_gen(gen, p));
  return static_cast<uint64_t>(n->current.size());
}

}  // namespace mq::storage

// Helpers shared by the storage tests.
#pragma once

#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <mutex>
#include <unistd.h>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "storage/message_store.h"
#include "storage/record.h"

namespace mq::storage::test {

// Opens a store and requires success.
inline std::unique_ptr<MessageStore> open_store(const StoreOptions& o, RecoveryReport* rep = nullptr) {
  auto s = MessageStore::open(o, rep);
  REQUIRE(s.status().to_string() == "ok");
  return std::move(*s);
}

// Wall-clock ms since the epoch (what store times and enforce_retention count in).
inline int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// Polls pred every 2 ms until it holds (true) or `within` passed (false).
template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds within = std::chrono::milliseconds(5000)) {
  auto end = std::chrono::steady_clock::now() + within;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

class TempDir {
 public:
  // `base` empty: the system temp dir. Tests that only check logic on real
  // files may pass "/dev/shm" (tmpfs: fsync is free) through shm_or_tmp().
  explicit TempDir(std::filesystem::path base = {}) {
    if (base.empty()) base = std::filesystem::temp_directory_path();
    std::string tmpl = (base / "mq-storage-XXXXXX").string();
    char* p = ::mkdtemp(tmpl.data());
    path_ = p ? p : tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::filesystem::path shm_or_tmp() {
  std::error_code ec;
  if (std::filesystem::is_directory("/dev/shm", ec) && ::access("/dev/shm", W_OK) == 0) return "/dev/shm";
  return std::filesystem::temp_directory_path();
}

inline std::string make_record(const std::string& topic, uint32_t queue, const std::string& body,
                               const std::string& tag = "", int64_t born = 1) {
  Message m;
  m.topic = topic;
  m.queue = queue;
  m.body = body;
  m.tag = tag;
  m.born_ms = born;
  m.key = "k";
  m.id[0] = 1;
  std::string out;
  encode_record(m, out);
  return out;
}

struct AppendOutcome {
  Status status;
  std::vector<Appended> appended;
};

// Appends and waits for the callback.
inline AppendOutcome append_wait(MessageStore& s, std::string batch, bool checked = false) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  AppendOutcome out;
  s.append(std::move(batch), [&](Status st, std::vector<Appended> a) {
    std::lock_guard lk(mu);
    out.status = std::move(st);
    out.appended = std::move(a);
    done = true;
    cv.notify_all();
  }, checked);
  std::unique_lock lk(mu);
  cv.wait(lk, [&] { return done; });
  return out;
}

// Appends "m0".."m<n-1>" to t/0 from n threads at once; their answers' statuses.
inline std::vector<Status> append_concurrently(MessageStore& s, int n) {
  std::vector<std::thread> ts;
  std::vector<Status> got(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i)
    ts.emplace_back([&, i] { got[static_cast<size_t>(i)] = append_wait(s, make_record("t", 0, "m" + std::to_string(i))).status; });
  for (auto& t : ts) t.join();
  return got;
}

// Stands in for the broker's io threads as a store's round runner
// (MessageStore::set_round_runner): runs what it is given in order on a
// thread of its own, or, paused, keeps it. Must outlive the stores using it.
class TestRunner {
 public:
  TestRunner() : th_([this] { loop(); }) {}
  ~TestRunner() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    th_.join();
  }
  std::function<void(std::function<void()>)> runner() {
    return [this](std::function<void()> f) {
      std::lock_guard lk(mu_);
      q_.push_back(std::move(f));
      ++posted_;
      cv_.notify_all();
    };
  }
  void pause(bool on) {
    std::lock_guard lk(mu_);
    paused_ = on;
    cv_.notify_all();
  }
  // What a paused runner kept, taken out (run them by hand).
  std::vector<std::function<void()>> take() {
    std::lock_guard lk(mu_);
    return std::exchange(q_, {});
  }
  size_t posted() {
    std::lock_guard lk(mu_);
    return posted_;
  }
  std::thread::id id() const { return th_.get_id(); }

 private:
  void loop() {
    std::unique_lock lk(mu_);
    for (;;) {
      cv_.wait(lk, [&] { return stop_ || (!paused_ && !q_.empty()); });
      if (stop_) return;
      auto fs = std::exchange(q_, {});
      lk.unlock();
      for (auto& f : fs) f();
      lk.lock();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<std::function<void()>> q_;
  size_t posted_ = 0;
  bool paused_ = false, stop_ = false;
  std::thread th_;
};

// Decodes every record of a read result (they were CRC-checked by the store).
inline std::vector<Message> messages(const ReadResult& r) {
  std::vector<Message> out;
  std::string_view in = r.records;
  while (!in.empty()) {
    RecordView v;
    if (decode_record(in, v) != DecodeResult::ok) break;
    out.push_back(v.to_message());
    in.remove_prefix(v.bytes.size());
  }
  return out;
}

}  // namespace mq::storage::test

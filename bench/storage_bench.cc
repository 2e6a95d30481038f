// storage_bench [--dir DIR] [--seconds S]: append throughput and latency of
// the message store with 100-byte messages on real files: async flush, and
// sync flush (group commit) with 1, 8 and 64 concurrent appenders. Prints one
// line per scenario and a JSON line at the end. S (default 16) bounds the
// whole run.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "storage/file_system.h"
#include "storage/message_store.h"
#include "storage/record.h"

using namespace mq;
using namespace mq::storage;
using Clock = std::chrono::steady_clock;

namespace {

// Forwards to the real file system and counts fdatasyncs of log segments.
class CountingFs final : public FileSystem {
 public:
  std::atomic<uint64_t> log_syncs{0};

  class CountingFile final : public File {
   public:
    CountingFile(std::unique_ptr<File> f, std::atomic<uint64_t>* n) : f_(std::move(f)), n_(n) {}
    Result<size_t> pwrite(std::string_view d, uint64_t o) override { return f_->pwrite(d, o); }
    Result<size_t> pread(char* b, size_t n, uint64_t o) const override { return f_->pread(b, n, o); }
    Status sync() override {
      if (n_) ++*n_;
      return f_->sync();
    }
    Status truncate(uint64_t s) override { return f_->truncate(s); }
    Result<bool> punch_hole(uint64_t o, uint64_t n) override { return f_->punch_hole(o, n); }
    Result<bool> reserve(uint64_t o, uint64_t n) override { return f_->reserve(o, n); }
    Result<uint64_t> size() const override { return f_->size(); }
    const fs::path& path() const override { return f_->path(); }

   private:
    std::unique_ptr<File> f_;
    std::atomic<uint64_t>* n_;
  };

  Result<std::unique_ptr<File>> open(const fs::path& p, bool create) override {
    auto f = real().open(p, create);
    if (!f) return f.status();
    bool is_log = p.parent_path().filename() == "commitlog";
    return std::unique_ptr<File>(std::make_unique<CountingFile>(std::move(*f), is_log ? &log_syncs : nullptr));
  }
  Status remove(const fs::path& p) override { return real().remove(p); }
  Status rename(const fs::path& a, const fs::path& b) override { return real().rename(a, b); }
  Result<std::vector<std::string>> list(const fs::path& d) override { return real().list(d); }
  bool exists(const fs::path& p) override { return real().exists(p); }
  bool is_dir(const fs::path& p) override { return real().is_dir(p); }
  Status mkdirs(const fs::path& d) override { return real().mkdirs(d); }
  Status sync_dir(const fs::path& d) override { return real().sync_dir(d); }

 private:
  static FileSystem& real() { return FileSystem::posix(); }
};

struct Result_ {
  std::string name;
  int threads = 0;
  uint64_t msgs = 0;
  double seconds = 0;
  double p50_us = 0, p99_us = 0;
  double msgs_per_sync = 0;
  uint64_t errors = 0;
};

std::string record_100() {
  Message m;
  m.topic = "bench";
  m.body = std::string(100, 'x');
  std::string out;
  encode_record(m, out);
  return out;
}

Result_ run(const fs::path& dir, FlushMode mode, int threads, double seconds) {
  CountingFs cfs;
  StoreOptions o;
  o.dir = dir;
  o.flush = mode;
  o.segment_size = 256ull << 20;
  o.fs = &cfs;
  Result_ r;
  r.name = mode == FlushMode::async ? "async" : "sync";
  r.threads = threads;
  auto opened = MessageStore::open(o);
  if (!opened) {
    std::fprintf(stderr, "storage_bench: %s\n", opened.status().to_string().c_str());
    std::exit(1);
  }
  auto& store = **opened;
  const std::string rec = record_100();
  std::atomic<bool> stop{false};
  std::atomic<uint64_t> errors{0};
  std::vector<std::vector<uint32_t>> lat(threads);
  uint64_t syncs0 = cfs.log_syncs.load();
  auto t0 = Clock::now();
  std::vector<std::thread> ts;
  for (int t = 0; t < threads; ++t) {
    ts.emplace_back([&, t] {
      std::mutex mu;
      std::condition_variable cv;
      uint32_t q = static_cast<uint32_t>(t % 8);
      if (mode == FlushMode::async) {
        // Callbacks run inline: keep appending, sample latency every 64th.
        for (uint64_t n = 0; !stop; ++n) {
          std::string b = rec;
          auto s = Clock::now();
          store.append(std::move(b), [&](Status st, std::vector<Appended>) {
            if (!st.is_ok()) ++errors;
          });
          if (n % 64 == 0)
            lat[t].push_back(static_cast<uint32_t>(
                std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - s).count()));
        }
        return;
      }
      while (!stop) {
        bool done = false;
        std::string b = rec;
        stamp_record(b.data(), q, 0, 0);
        auto s = Clock::now();
        store.append(std::move(b), [&](Status st, std::vector<Appended>) {
          if (!st.is_ok()) ++errors;
          std::lock_guard lk(mu);
          done = true;
          cv.notify_one();
        });
        std::unique_lock lk(mu);
        cv.wait(lk, [&] { return done; });
        lat[t].push_back(static_cast<uint32_t>(
            std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - s).count()));
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& th : ts) th.join();
  r.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  for (auto& q : store.queues()) r.msgs += store.queue_info(q.first, q.second).max_offset;
  uint64_t syncs = cfs.log_syncs.load() - syncs0;
  r.msgs_per_sync = syncs ? static_cast<double>(r.msgs) / static_cast<double>(syncs) : 0;
  std::vector<uint32_t> all;
  for (auto& l : lat) all.insert(all.end(), l.begin(), l.end());
  std::sort(all.begin(), all.end());
  if (!all.empty()) {
    r.p50_us = all[all.size() / 2];
    r.p99_us = all[std::min(all.size() - 1, all.size() * 99 / 100)];
  }
  r.errors = errors;
  if (Status s = store.close(); !s.is_ok()) std::fprintf(stderr, "storage_bench: close: %s\n", s.to_string().c_str());
  return r;
}

}  // namespace

int main(int argc, char** argv) {
  fs::path base = fs::absolute(argv[0]).lexically_normal().parent_path().parent_path();  // the build dir
  double seconds = 16;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if ((a == "--dir" || a == "--seconds") && i + 1 < argc) {
      std::string v = argv[++i];
      if (a == "--dir") {
        base = v;
      } else {
        char* end = nullptr;
        seconds = std::strtod(v.c_str(), &end);
        if (!end || *end || seconds <= 0 || seconds > 600) {
          std::fprintf(stderr, "storage_bench: bad --seconds %s\n", v.c_str());
          return 2;
        }
      }
    } else if (a == "-h" || a == "--help") {
      std::printf("usage: storage_bench [--dir DIR] [--seconds S]\n");
      return 0;
    } else {
      std::fprintf(stderr, "storage_bench: unknown argument %s\n", a.c_str());
      return 2;
    }
  }
  std::string tmpl = (base / "storage-bench-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) {
    std::fprintf(stderr, "storage_bench: cannot create a temp dir under %s\n", base.c_str());
    return 1;
  }
  fs::path root = tmpl;
  struct Cleanup {
    fs::path p;
    ~Cleanup() {
      std::error_code ec;
      fs::remove_all(p, ec);
    }
  } cleanup{root};

  struct Plan {
    FlushMode mode;
    int threads;
  };
  std::vector<Plan> plans = {{FlushMode::async, 1}, {FlushMode::sync, 1}, {FlushMode::sync, 8}, {FlushMode::sync, 64}};
  std::vector<Result_> results;
  double each = seconds / static_cast<double>(plans.size());
  std::printf("storage_bench: 100-byte messages, %.1f s per scenario, files under %s\n", each, root.c_str());
  for (size_t i = 0; i < plans.size(); ++i) {
    auto r = run(root / ("run" + std::to_string(i)), plans[i].mode, plans[i].threads, each);
    double rate = r.msgs / r.seconds;
    std::printf("%-5s flush %2d appender(s): %10.0f msgs/s %7.2f MB/s  p50 %7.0f us  p99 %7.0f us  %7.1f msgs/fdatasync  errors %lu\n",
                r.name.c_str(), r.threads, rate, rate * 100 / 1e6, r.p50_us, r.p99_us, r.msgs_per_sync,
                static_cast<unsigned long>(r.errors));
    std::fflush(stdout);
    results.push_back(r);
  }
  std::string json = "{\"bench\":\"storage\",\"message_bytes\":100,\"runs\":[";
  for (size_t i = 0; i < results.size(); ++i) {
    auto& r = results[i];
    double rate = r.msgs / r.seconds;
    json += fmt::format("{}{{\"flush\":\"{}\",\"appenders\":{},\"msgs_per_s\":{:.0f},\"mb_per_s\":{:.2f},"
                        "\"p50_us\":{:.0f},\"p99_us\":{:.0f},\"msgs_per_fdatasync\":{:.1f},\"errors\":{}}}",
                        i ? "," : "", r.name, r.threads, rate, rate * 100 / 1e6, r.p50_us, r.p99_us,
                        r.msgs_per_sync, r.errors);
  }
  json += "]}";
  std::printf("%s\n", json.c_str());
  return 0;
}

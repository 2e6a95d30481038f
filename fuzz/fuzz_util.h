// Helpers shared by the fuzz targets (fuzz/fuzz_*.cc). Each target defines
// LLVMFuzzerTestOneInput; it is linked either with libFuzzer (clang,
// MQ_FUZZ=ON) or with replay_main.cc, which runs a corpus directory through it
// (the fuzz-regress-* ctest tests).
#pragma once

#include <spdlog/spdlog.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

// A property the code under test must keep: on failure print what and abort,
// which libFuzzer reports as a crash (and saves the input).
#define MQ_FUZZ_CHECK(cond, ...)                                                    \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "fuzz check failed at %s:%d: %s\n", __FILE__, __LINE__, \
                   #cond);                                                          \
      std::fprintf(stderr, "  %s\n", fmt::format(__VA_ARGS__).c_str());             \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace mq::fuzz {

// Silences spdlog once (libmq logs recovery cuts, bad requests...).
inline void quiet() {
  static bool done = [] {
    spdlog::set_level(spdlog::level::off);
    return true;
  }();
  (void)done;
}

inline std::string_view as_view(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

// Splits `in` at every occurrence of `sep` (the seeds use it to pack several
// inputs into one file; libFuzzer learns the separator from them).
inline std::vector<std::string_view> split(std::string_view in, std::string_view sep,
                                           size_t max_parts = 64) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_parts) {
    size_t p = in.find(sep);
    if (p == std::string_view::npos) break;
    out.push_back(in.substr(0, p));
    in.remove_prefix(p + sep.size());
  }
  out.push_back(in);
  return out;
}

// Consumes bytes from the front of an input to steer a target.
class Steer {
 public:
  explicit Steer(std::string_view in) : in_(in) {}
  uint8_t u8() {
    if (in_.empty()) return 0;
    uint8_t v = static_cast<uint8_t>(in_[0]);
    in_.remove_prefix(1);
    return v;
  }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v |= static_cast<uint32_t>(u8()) << (8 * i);
    return v;
  }
  std::string_view rest() const { return in_; }

 private:
  std::string_view in_;
};

}  // namespace mq::fuzz

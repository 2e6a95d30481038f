#include "cli/progress.h"

#include <unistd.h>

#include <atomic>

namespace mq::cli {

namespace {

std::atomic<bool> g_shown{false};  // a progress line is on the terminal

void write_all(std::string_view s) {
  while (!s.empty()) {
    ssize_t n = ::write(STDERR_FILENO, s.data(), s.size());
    if (n <= 0) return;  // a terminal that fails is not worth an error
    s.remove_prefix(static_cast<size_t>(n));
  }
}

}  // namespace

Progress::Progress(bool want)
    : enabled_(want && ::isatty(STDERR_FILENO) == 1),
      start_(std::chrono::steady_clock::now()),
      next_(start_ + std::chrono::milliseconds(100)) {}

bool Progress::due() {
  if (!enabled_) return false;
  auto now = std::chrono::steady_clock::now();
  if (now < next_) return false;
  next_ = now + std::chrono::milliseconds(100);
  return true;
}

void Progress::draw(std::string_view line) {
  if (!enabled_) return;
  std::string out = "\r";
  out.append(line);
  out.append("\x1b[K");
  write_all(out);
  g_shown = true;
}

void Progress::clear() {
  if (enabled_) erase_progress_line();
}

double Progress::rate(uint64_t count) const {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  return secs > 0 ? static_cast<double>(count) / secs : 0;
}

void erase_progress_line() {
  if (g_shown.exchange(false)) write_all("\r\x1b[K");
}

std::string with_commas(uint64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out.push_back(',');
    out.push_back(digits[i]);
  }
  return out;
}

}  // namespace mq::cli

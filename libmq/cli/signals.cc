#include "cli/signals.h"

#include <signal.h>
#include <unistd.h>

namespace mq::cli {
namespace {

std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
std::atomic<void (*)() noexcept> g_second_hook{nullptr};

void on_stop(int sig) {
  if (g_stop.exchange(true)) {  // second signal: leave now
    if (auto hook = g_second_hook.load()) hook();
    _exit(128 + sig);
  }
  g_signal.store(sig);
}

}  // namespace

void ignore_sigpipe() {
  struct sigaction sa {};
  sa.sa_handler = SIG_IGN;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGPIPE, &sa, nullptr);
}

void install_stop_signals() {
  struct sigaction sa {};
  sa.sa_handler = on_stop;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0;  // no SA_RESTART: blocking reads return EINTR
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  sigaction(SIGHUP, &sa, nullptr);  // the terminal went away: a clean stop, not death
  ignore_sigpipe();
}

bool stop_requested() { return g_stop.load(std::memory_order_relaxed); }
const std::atomic<bool>& stop_flag() { return g_stop; }
void request_stop() { g_stop.store(true); }
int stop_signal() { return g_signal.load(); }
void on_second_signal(void (*hook)() noexcept) { g_second_hook.store(hook); }

}  // namespace mq::cli

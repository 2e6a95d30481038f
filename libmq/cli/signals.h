// Signal handling for the client programs: SIGINT/SIGTERM set a stop flag the
// apps check between messages (a second one exits at once with 128 + signal);
// SIGPIPE is ignored so a closed stdout shows up as EPIPE (see OutputWriter).
#pragma once

#include <atomic>

namespace mq::cli {

// Installs the SIGINT/SIGTERM handlers (without SA_RESTART: a blocking read
// returns EINTR so the caller can look at the flag) and ignores SIGPIPE.
void install_stop_signals();
void ignore_sigpipe();
// True once SIGINT or SIGTERM arrived (or request_stop was called).
bool stop_requested();
const std::atomic<bool>& stop_flag();
void request_stop();
// The signal that asked to stop (0 when none).
int stop_signal();
// Runs in the signal handler of a second SIGINT/SIGTERM, just before the
// program leaves: must be async-signal-safe (e.g. client::kill_running_commands).
void on_second_signal(void (*hook)() noexcept);

}  // namespace mq::cli

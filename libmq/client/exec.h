// Runs one `sh -c CMD` for a message: body on its stdin, extra environment,
// a deadline. On timeout the process group gets SIGTERM, then SIGKILL after
// kKillGrace, and the call returns only once the process is gone, so a timed
// out command can never finish (and count) later. Blocking; call it from a
// worker thread. Thread-safe.
#pragma once

#include <atomic>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "util/parse.h"
#include "util/status.h"

namespace mq::client {

inline constexpr Millis kKillGrace{2000};
inline constexpr int kExitDeadLetter = 65;  // EX_DATAERR: dead-letter at once

struct ExecResult {
  int exit_code = -1;     // when exited normally
  int signal = 0;         // when killed by a signal
  bool timed_out = false;
  bool not_started = false;  // may_start said no: the command never ran
  bool ok() const { return !timed_out && signal == 0 && exit_code == 0; }
  std::string describe() const;  // "exit 3", "killed by signal 9", "timed out after 2s"
};

// `stop` (optional): when it becomes true the command is terminated like on a timeout.
// `may_start` (optional): asked once the command is spawned and listed, right before
// it may run; when it says no the command never runs (ExecResult::not_started). For a
// caller whose right to run it can lapse while this thread waits (a member frozen
// between taking a message and spawning its command).
Result<ExecResult> run_command(const std::string& cmd, std::string_view body,
                               const std::vector<std::pair<std::string, std::string>>& env, Millis timeout,
                               const std::atomic<bool>* stop = nullptr,
                               const std::function<bool()>& may_start = {});

// Forks the reaper: a small process that outlives this one (kill -9 included) just long
// enough to terminate the process groups of the commands still running then (SIGTERM,
// then SIGKILL after kKillGrace), so no command of a dead consumer runs on unseen (with
// --orderly, beside the member that took its queue over). Call it once, before any
// thread is started (fork). Without it, run_command works the same, unwatched.
Status start_command_reaper();

// SIGKILLs the process group of every command run_command() is running now.
// Async-signal-safe: for a program leaving at once on a second signal, so
// that no command it started runs on unseen.
void kill_running_commands() noexcept;

}  // namespace mq::client

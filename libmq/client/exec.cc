#include "client/exec.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "util/file.h"

extern char** environ;

namespace mq::client {

std::string ExecResult::describe() const {
  if (not_started) return "not started";
  if (timed_out) return "timed out";
  if (signal) return fmt::format("killed by signal {}", signal);
  return fmt::format("exit {}", exit_code);
}

namespace {

int pidfd_open(pid_t pid) { return static_cast<int>(::syscall(SYS_pidfd_open, pid, 0)); }

// The process groups of running commands, for kill_running_commands(): plain
// lock-free slots a signal handler may read. A command that finds no free slot
// (more than kSlots at once) is simply not listed.
constexpr size_t kSlots = 1024;
std::atomic<pid_t> g_running[kSlots];
static_assert(std::atomic<pid_t>::is_always_lock_free);

// The reaper (start_command_reaper) is told of every command's process group as it
// starts ('+') and ends ('-'): one 5-byte record each, a single send (atomic on a stream
// socket of this size in practice; the reaper reads whole records).
std::atomic<int> g_reaper{-1};
void tell_reaper(char op, pid_t pgid) {
  int fd = g_reaper.load(std::memory_order_relaxed);
  if (fd < 0) return;
  char rec[5] = {op};
  std::memcpy(rec + 1, &pgid, sizeof pgid);
  (void)!::send(fd, rec, sizeof rec, MSG_NOSIGNAL);
}

[[noreturn]] void reaper_main(int fd) {
  // Its own process group: a terminal's Ctrl-C (meant for the consumer) is not for it.
  ::setpgid(0, 0);
  for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGPIPE}) ::signal(s, SIG_IGN);
  int null = ::open("/dev/null", O_RDWR);
  for (int i = 0; i <= STDERR_FILENO; ++i) ::dup2(null, i);
  if (fd != 3) {
    ::dup2(fd, 3);
    fd = 3;
  }
  ::close_range(4, ~0U, 0);  // not the consumer's stdout (a pipe's reader waits for its end)
  pid_t groups[kSlots] = {};
  char rec[5];
  size_t have = 0;
  for (;;) {
    ssize_t n = ::read(fd, rec + have, sizeof rec - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // the consumer is gone (or closed it at its end)
    have += static_cast<size_t>(n);
    if (have < sizeof rec) continue;
    have = 0;
    pid_t pg;
    std::memcpy(&pg, rec + 1, sizeof pg);
    for (auto& g : groups)
      if (rec[0] == '+' ? g == 0 : g == pg) {
        g = rec[0] == '+' ? pg : 0;
        break;
      }
  }
  // What is left ran when the consumer ended: terminated like on a timeout.
  bool any = false;
  for (pid_t g : groups)
    if (g > 0 && ::kill(-g, SIGTERM) == 0) any = true;
  if (any) {
    for (auto i = kKillGrace / Millis(20); i > 0; --i) {
      bool left = false;
      for (pid_t g : groups)
        if (g > 0 && ::kill(-g, 0) == 0) left = true;
      if (!left) break;
      ::usleep(20000);
    }
    for (pid_t g : groups)
      if (g > 0) ::kill(-g, SIGKILL);
  }
  ::_exit(0);
}

class Listed {
 public:
  explicit Listed(pid_t pid) : pid_(pid) {
    for (size_t i = 0; i < kSlots; ++i) {
      pid_t free = 0;
      if (g_running[i].compare_exchange_strong(free, pid)) {
        slot_ = i;
        break;
      }
    }
    tell_reaper('+', pid);
  }
  ~Listed() {
    tell_reaper('-', pid_);
    if (slot_ < kSlots) g_running[slot_].store(0);
  }
  Listed(const Listed&) = delete;
  Listed& operator=(const Listed&) = delete;

 private:
  pid_t pid_;
  size_t slot_ = kSlots;
};

struct Env {
  std::vector<std::string> storage;
  std::vector<char*> ptrs;
  explicit Env(const std::vector<std::pair<std::string, std::string>>& extra) {
    for (char** e = environ; e && *e; ++e) {
      std::string_view kv(*e);
      bool overridden = false;
      for (auto& [k, v] : extra)
        if (kv.size() > k.size() && kv.substr(0, k.size()) == k && kv[k.size()] == '=') overridden = true;
      if (!overridden) storage.emplace_back(kv);
    }
    for (auto& [k, v] : extra) storage.push_back(k + "=" + v);
    for (auto& s : storage) ptrs.push_back(s.data());
    ptrs.push_back(nullptr);
  }
};

// A terminated command's shell is gone; what it started got the SIGTERM too
// but may ignore it: wait for its process group to empty until kill_at, then
// SIGKILL the rest, so nothing of a terminated command finishes later. (The
// group id cannot be reused while any member is alive.)
void finish_group(pid_t pgid, std::chrono::steady_clock::time_point kill_at) {
  while (::kill(-pgid, 0) == 0) {
    if (std::chrono::steady_clock::now() >= kill_at) {
      ::kill(-pgid, SIGKILL);
      return;
    }
    std::this_thread::sleep_for(Millis(20));
  }
}

}  // namespace

Result<ExecResult> run_command(const std::string& cmd, std::string_view body,
                               const std::vector<std::pair<std::string, std::string>>& env, Millis timeout,
                               const std::atomic<bool>* stop, const std::function<bool()>& may_start) {
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) return Status::from_errno("pipe", errno);
  UniqueFd rd(p[0]), wr(p[1]);
  // The gate: the shell waits on fd 3 for one byte written once the command is listed
  // (with the reaper and for a second signal). A consumer that dies between the spawn
  // and the listing closes the gate unwritten and the command never runs: it ran
  // unwatched, with an empty body, after a kill -9 or a second signal.
  int g[2];
  if (::pipe2(g, O_CLOEXEC) != 0) return Status::from_errno("pipe", errno);
  UniqueFd gate_rd(g[0]), gate_wr(g[1]);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, rd.get(), STDIN_FILENO);
  posix_spawn_file_actions_adddup2(&fa, gate_rd.get(), 3);
  // Only stdin, stdout and stderr (and the gate, closed before the command runs): a
  // broker connection opened without close-on-exec would let the command (and what it
  // leaves running) hold the member's session open.
  posix_spawn_file_actions_addclosefrom_np(&fa, 4);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  // own process group, so a timeout kills what the shell started too; default SIGPIPE
  posix_spawnattr_setpgroup(&attr, 0);
  sigset_t def;
  sigemptyset(&def);
  sigaddset(&def, SIGPIPE);
  sigaddset(&def, SIGINT);
  sigaddset(&def, SIGTERM);
  posix_spawnattr_setsigdefault(&attr, &def);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  Env e(env);
  // The command as sh -c would run it, once the gate opens ($0 sh, no positional
  // parameters; only the variable holding it is left behind).
  const char* argv[] = {"sh", "-c", "IFS= read -r _ <&3 || exit 125; exec 3<&-; mq_command_=$1; shift; eval \"$mq_command_\"",
                        "sh", cmd.c_str(), nullptr};
  pid_t pid;
  int rc = posix_spawn(&pid, "/bin/sh", &fa, &attr, const_cast<char**>(argv), e.ptrs.data());
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (rc != 0) return Status::from_errno("cannot run sh -c", rc);
  rd.reset();
  gate_rd.reset();
  Listed listed(pid);
  if (may_start && !may_start()) {
    // The gate closes unwritten: the shell exits 125 without running the command.
    gate_wr.reset();
    wr.reset();
    int status;
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    ExecResult res;
    res.not_started = true;
    return res;
  }
  (void)!::write(gate_wr.get(), "\n", 1);
  gate_wr.reset();
  UniqueFd pfd(pidfd_open(pid));
  ::fcntl(wr.get(), F_SETFL, O_NONBLOCK);

  using Clock = std::chrono::steady_clock;
  auto deadline = Clock::now() + timeout;
  size_t written = 0;
  if (body.empty()) wr.reset();
  ExecResult res;
  bool terminating = false;
  Clock::time_point kill_at{};
  for (;;) {
    int status;
    pid_t w = ::waitpid(pid, &status, WNOHANG);
    if (w == pid) {
      if (WIFEXITED(status)) res.exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) res.signal = WTERMSIG(status);
      if (terminating) {
        res.timed_out = true;
        finish_group(pid, kill_at);
      }
      return res;
    }
    auto now = Clock::now();
    bool stop_now = stop && stop->load();
    if (!terminating && (now >= deadline || stop_now)) {
      ::kill(-pid, SIGTERM);
      terminating = true;
      kill_at = now + kKillGrace;
      wr.reset();
    }
    if (terminating && now >= kill_at) {
      ::kill(-pid, SIGKILL);
      kill_at = now + Millis(1000);
    }
    pollfd fds[2];
    int n = 0;
    if (pfd) fds[n++] = {pfd.get(), POLLIN, 0};
    if (wr) fds[n++] = {wr.get(), POLLOUT, 0};
    auto until = terminating ? kill_at : deadline;
    auto wait_ms = std::chrono::duration_cast<Millis>(until - now).count();
    if (stop) wait_ms = std::min<int64_t>(wait_ms, 100);
    if (!pfd) wait_ms = std::min<int64_t>(wait_ms, 5);  // no pidfd: poll waitpid
    ::poll(fds, static_cast<nfds_t>(n), static_cast<int>(std::max<int64_t>(0, wait_ms)));
    if (wr) {
      // A command that does not read its stdin must not kill us with SIGPIPE:
      // block it for this thread and swallow the pending one after EPIPE.
      sigset_t pipe_set, old;
      sigemptyset(&pipe_set);
      sigaddset(&pipe_set, SIGPIPE);
      pthread_sigmask(SIG_BLOCK, &pipe_set, &old);
      ssize_t k = ::write(wr.get(), body.data() + written, body.size() - written);
      int err = errno;
      if (k < 0 && err == EPIPE) {
        timespec zero{0, 0};
        sigtimedwait(&pipe_set, nullptr, &zero);
      }
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      errno = err;
      if (k > 0) written += static_cast<size_t>(k);
      if ((k < 0 && errno != EAGAIN && errno != EINTR) || written == body.size()) wr.reset();
    }
  }
}

Status start_command_reaper() {
  if (g_reaper.load() >= 0) return Status::ok();
  int sv[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return Status::from_errno("socketpair", errno);
  pid_t pid = ::fork();
  if (pid < 0) {
    int err = errno;
    ::close(sv[0]);
    ::close(sv[1]);
    return Status::from_errno("fork", err);
  }
  if (pid == 0) {
    ::close(sv[0]);
    reaper_main(sv[1]);
  }
  ::close(sv[1]);
  g_reaper.store(sv[0]);
  return Status::ok();
}

void kill_running_commands() noexcept {
  for (auto& slot : g_running)
    if (pid_t pid = slot.load(); pid > 0) ::kill(-pid, SIGKILL);
}

}  // namespace mq::client

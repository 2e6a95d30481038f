// Test-only LD_PRELOAD library: a slow disk for the integration tests
// (tests/integration/078-flush-timeout.sh). While the file named by
// $MQ_SLOW_SYNC_FILE exists, every fdatasync() first sleeps the milliseconds
// written in it, or fails with EIO when it holds "eio" (077-fsync-error.sh);
// without the file, fdatasync is untouched. Not installed.
#include <dlfcn.h>
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <ctime>

extern "C" int fdatasync(int fd) {
  using Fn = int (*)(int);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "fdatasync"));
  if (const char* path = std::getenv("MQ_SLOW_SYNC_FILE")) {
    int f = ::open(path, O_RDONLY | O_CLOEXEC);
    if (f >= 0) {
      char buf[32];
      ssize_t n = ::read(f, buf, sizeof buf - 1);
      ::close(f);
      long ms = 0;
      if (n > 0) {
        buf[n] = '\0';
        if (n >= 3 && buf[0] == 'e' && buf[1] == 'i' && buf[2] == 'o') {
          errno = EIO;
          return -1;
        }
        ms = std::strtol(buf, nullptr, 10);
      }
      if (ms > 0) {
        timespec ts{ms / 1000, (ms % 1000) * 1000000};
        while (::nanosleep(&ts, &ts) != 0 && errno == EINTR) {
        }
      }
    }
  }
  if (!real) {
    errno = ENOSYS;
    return -1;
  }
  return real(fd);
}

// The standard streams a program works on, passed to app:: functions so
// tests can hand them pipes or files instead.
#pragma once

#include <unistd.h>

namespace mq::cli {

struct Stdio {
  int in = STDIN_FILENO;
  int out = STDOUT_FILENO;
};

inline Stdio stdio() { return {}; }

}  // namespace mq::cli

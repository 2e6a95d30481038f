// Names the calling thread (at most 15 bytes, the kernel's limit) so that
// `top -H`, `ps -L`, perf and gdb tell the broker's threads apart.
#pragma once

#include <pthread.h>

namespace mq {

inline void name_this_thread(const char* name) { (void)pthread_setname_np(pthread_self(), name); }

}  // namespace mq

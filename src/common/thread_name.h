#pragma once

#include <pthread.h>

#include <string>

namespace skiff {

// Names the calling thread as `top -H`, perf and gdb show it. Linux keeps 15 characters; the
// rest is cut off.
inline void SetThreadName(const std::string& name) {
  pthread_setname_np(pthread_self(), name.substr(0, 15).c_str());
}

}  // namespace skiff

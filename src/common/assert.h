// Always-on assertions. An invariant that breaks in production must stop the process loudly
// rather than let it corrupt a replicated log; so these are not compiled out in release builds.
// Use SKIFF_ASSERT for "cannot happen unless Skiff has a bug", never for bad input from a client
// or a peer (those return a Status).
#pragma once

#include <cstdio>
#include <cstdlib>

namespace skiff::detail {
[[noreturn]] inline void AssertFailed(const char* expr, const char* file, int line,
                                      const char* msg) {
  std::fprintf(stderr, "%s:%d: assertion failed: %s%s%s\n", file, line, expr, msg[0] ? " — " : "",
               msg);
  std::fflush(stderr);
  std::abort();
}
}  // namespace skiff::detail

#define SKIFF_ASSERT(expr)                                                     \
  do {                                                                         \
    if (!(expr)) ::skiff::detail::AssertFailed(#expr, __FILE__, __LINE__, ""); \
  } while (0)

#define SKIFF_ASSERT_MSG(expr, msg)                                             \
  do {                                                                          \
    if (!(expr)) ::skiff::detail::AssertFailed(#expr, __FILE__, __LINE__, msg); \
  } while (0)

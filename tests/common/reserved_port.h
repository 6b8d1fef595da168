// Listening ports for test brokers, reserved across every test process on this machine.
//
// A port the kernel hands out for bind(port 0) is free only until someone else takes it: a
// test running alongside that asks the same way, or any outgoing connection (both draw from
// the ephemeral range, 32768-60999 here). When two servers then bind it, gRPC's default
// SO_REUSEPORT let both listen and the kernel split connections between two clusters; skiffd
// now refuses that, so a collision fails a broker's start instead. To avoid collisions at all,
// test ports come from below the ephemeral range, and each is reserved by an exclusive flock
// on a file in /tmp/skiff-test-ports that this process holds until it exits (kill -9 too).
// tests/common/reserved_ports.py takes the same locks for the Python tests.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <random>
#include <string>

namespace skiff::testing {

inline constexpr int kFirstTestPort = 20000;
inline constexpr int kTestPortCount = 12000;  // up to 31999, below the ephemeral range
inline constexpr const char* kPortLockDir = "/tmp/skiff-test-ports";

// True if nothing listens on or is bound to 127.0.0.1:port right now.
inline bool LoopbackPortIsFree(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(static_cast<uint16_t>(port));
  const bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return free;
}

// A port on 127.0.0.1 that no other test process holds and nothing is bound to; -1 if none
// was found. The reservation lasts for the life of this process.
inline int ReservePort() {
  ::mkdir(kPortLockDir, 0777);  // may exist; the open below reports real failures
  static std::mt19937 random(std::random_device{}());
  const int start = static_cast<int>(random() % kTestPortCount);
  for (int i = 0; i < kTestPortCount; ++i) {
    const int port = kFirstTestPort + (start + i) % kTestPortCount;
    const std::string path = std::string(kPortLockDir) + "/" + std::to_string(port);
    int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) return -1;
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      ::close(fd);
      continue;
    }
    // Held, deliberately never closed: the lock goes when the process does.
    if (LoopbackPortIsFree(port)) return port;
  }
  return -1;
}

}  // namespace skiff::testing

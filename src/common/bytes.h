// Bytes: an immutable, cheaply shared byte buffer.
//
// A record batch travels from the gRPC request through Raft, storage and back out to followers
// and consumers. Copying the payload at every hop would cost more than the disk write, so the
// payload is held once and shared by reference count; headers around it are copied instead.
// Thread-safety: immutable after construction, so any number of threads may read it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace skiff {

class Bytes {
 public:
  Bytes() = default;
  explicit Bytes(std::string data) : data_(std::make_shared<const std::string>(std::move(data))) {}
  explicit Bytes(std::string_view data) : Bytes(std::string(data)) {}

  std::string_view view() const { return data_ ? std::string_view(*data_) : std::string_view(); }
  const char* data() const { return data_ ? data_->data() : nullptr; }
  size_t size() const { return data_ ? data_->size() : 0; }
  bool empty() const { return size() == 0; }
  std::string ToString() const { return std::string(view()); }

  friend bool operator==(const Bytes& a, const Bytes& b) { return a.view() == b.view(); }

 private:
  std::shared_ptr<const std::string> data_;
};

}  // namespace skiff

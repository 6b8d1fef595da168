// Status and Result<T>: how every Skiff module reports failure.
//
// Contract
//   * No exceptions cross a module boundary; a function that can fail returns Status or Result<T>.
//   * Both types are [[nodiscard]]: dropping one is a compile error under -Werror. A deliberate
//     swallow says so with IgnoreError().
//   * Codes are few on purpose. The mapping to gRPC status codes lives in exactly one place
//     (src/broker/status_to_grpc), so the meaning of a code never drifts between services.
//   * Thread-safety: values; safe to copy between threads.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace skiff {

enum class StatusCode : int {
  kOk = 0,
  kInvalidArgument,     // the caller sent something malformed; retrying will not help
  kNotFound,            // a named thing (topic, partition, group) does not exist
  kAlreadyExists,       // creating something that is already there
  kFailedPrecondition,  // valid request in the wrong state (e.g. not the leader)
  kOutOfRange,          // an offset or index outside what is stored
  kResourceExhausted,   // disk full, queue full, quota exceeded
  kUnavailable,         // transient: retry elsewhere or later
  kAborted,             // a concurrent change won (e.g. leadership lost mid-request)
  kCorruption,          // a checksum or format check failed on stored or received bytes
  kIoError,             // the OS refused a read, write or sync
  kUnimplemented,       // the API exists, the server does not serve it yet
  kInternal,            // an invariant broke; a bug
};

std::string_view StatusCodeName(StatusCode code);

class [[nodiscard]] Status {
 public:
  Status() = default;
  Status(StatusCode code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status Ok() { return Status(); }

  bool ok() const { return code_ == StatusCode::kOk; }
  StatusCode code() const { return code_; }
  const std::string& message() const { return message_; }
  // "CODE: message", for logs and error strings shown to users.
  std::string ToString() const;

  // The only sanctioned way to drop a Status. Say why at the call site.
  void IgnoreError() const {}

  friend bool operator==(const Status& a, const Status& b) {
    return a.code_ == b.code_ && a.message_ == b.message_;
  }

 private:
  StatusCode code_ = StatusCode::kOk;
  std::string message_;
};

inline Status InvalidArgumentError(std::string m) {
  return {StatusCode::kInvalidArgument, std::move(m)};
}
inline Status NotFoundError(std::string m) { return {StatusCode::kNotFound, std::move(m)}; }
inline Status AlreadyExistsError(std::string m) {
  return {StatusCode::kAlreadyExists, std::move(m)};
}
inline Status FailedPreconditionError(std::string m) {
  return {StatusCode::kFailedPrecondition, std::move(m)};
}
inline Status OutOfRangeError(std::string m) { return {StatusCode::kOutOfRange, std::move(m)}; }
inline Status ResourceExhaustedError(std::string m) {
  return {StatusCode::kResourceExhausted, std::move(m)};
}
inline Status UnavailableError(std::string m) { return {StatusCode::kUnavailable, std::move(m)}; }
inline Status AbortedError(std::string m) { return {StatusCode::kAborted, std::move(m)}; }
inline Status CorruptionError(std::string m) { return {StatusCode::kCorruption, std::move(m)}; }
inline Status IoError(std::string m) { return {StatusCode::kIoError, std::move(m)}; }
inline Status UnimplementedError(std::string m) {
  return {StatusCode::kUnimplemented, std::move(m)};
}
inline Status InternalError(std::string m) { return {StatusCode::kInternal, std::move(m)}; }

// A value or the Status explaining why there is none. Never holds an OK status without a value.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : state_(std::move(value)) {}        // NOLINT: implicit by design
  Result(Status status) : state_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(state_).ok() && "Result built from an OK status has no value");
  }

  bool ok() const { return std::holds_alternative<T>(state_); }
  Status status() const { return ok() ? Status::Ok() : std::get<Status>(state_); }

  const T& value() const& {
    assert(ok());
    return std::get<T>(state_);
  }
  T& value() & {
    assert(ok());
    return std::get<T>(state_);
  }
  T&& value() && {
    assert(ok());
    return std::get<T>(std::move(state_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

  void IgnoreError() const {}

 private:
  std::variant<T, Status> state_;
};

}  // namespace skiff

// Propagate a non-OK Status from an expression returning Status.
#define SKIFF_RETURN_IF_ERROR(expr)                \
  do {                                             \
    ::skiff::Status skiff_status_ = (expr);        \
    if (!skiff_status_.ok()) return skiff_status_; \
  } while (0)

#define SKIFF_CONCAT_INNER_(a, b) a##b
#define SKIFF_CONCAT_(a, b) SKIFF_CONCAT_INNER_(a, b)
// `SKIFF_ASSIGN_OR_RETURN(auto x, ExprReturningResult());`
#define SKIFF_ASSIGN_OR_RETURN(lhs, expr)                   \
  auto SKIFF_CONCAT_(skiff_result_, __LINE__) = (expr);     \
  if (!SKIFF_CONCAT_(skiff_result_, __LINE__).ok())         \
    return SKIFF_CONCAT_(skiff_result_, __LINE__).status(); \
  lhs = std::move(SKIFF_CONCAT_(skiff_result_, __LINE__)).value()

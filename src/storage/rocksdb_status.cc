#include "storage/rocksdb_status.h"

#include <string>

namespace skiff::storage {

Status FromRocks(const rocksdb::Status& s, std::string_view context) {
  if (s.ok()) return Status::Ok();
  std::string message = std::string(context) + ": " + s.ToString();
  if (s.IsNoSpace() || message.find("No space") != std::string::npos) {
    return ResourceExhaustedError("disk full: " + message);
  }
  if (s.IsCorruption()) return CorruptionError(std::move(message));
  if (s.IsIOError()) return IoError(std::move(message));
  if (s.IsBusy() || s.IsTryAgain() || s.IsTimedOut()) return UnavailableError(std::move(message));
  if (s.IsNotFound()) return NotFoundError(std::move(message));
  if (s.IsInvalidArgument()) return InvalidArgumentError(std::move(message));
  return InternalError(std::move(message));
}

}  // namespace skiff::storage

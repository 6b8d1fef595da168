// The one place where a rocksdb::Status becomes a skiff::Status.
//
// Mapping: NoSpace (ENOSPC, "No space left on device") -> kResourceExhausted; Corruption ->
// kCorruption; other I/O errors -> kIoError; Busy/TryAgain/TimedOut -> kUnavailable;
// NotFound -> kNotFound; InvalidArgument -> kInvalidArgument; anything else -> kInternal.
#pragma once

#include <string_view>

#include <rocksdb/status.h>

#include "common/status.h"

namespace skiff::storage {

Status FromRocks(const rocksdb::Status& s, std::string_view context);

}  // namespace skiff::storage

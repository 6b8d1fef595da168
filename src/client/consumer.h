// Consumer: reads a partition by offset. Stateless beyond the Client's metadata cache — the
// caller owns the position (the next offset it asks for), so this is the building block for
// the CLI and for group consumers, not a group consumer itself.
//
// Fetch and ListOffset follow leadership changes (NOT_LEADER hints, metadata refresh, another
// replica on UNAVAILABLE) with backoff until a retry deadline. An offset outside the log is
// kOutOfRange and the message states the valid range; FetchResult also carries the range on
// success.
//
// Thread-safety: thread-safe (no state of its own). The Client must outlive it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client/client.h"
#include "common/record_batch.h"
#include "common/status.h"
#include "skiff/v1/fetch.pb.h"

namespace skiff::client {

struct FetchOptions {
  int32_t max_wait_ms = 500;    // how long the broker may wait for data at `offset`
  int32_t max_bytes = 1 << 20;  // soft limit on the response size
  bool allow_follower = false;  // may a follower (ideally in client_rack) serve the read
  std::string client_rack;
  // How long to keep retrying across leadership changes (e.g. a topic just created, a leader
  // that died) and unreachable brokers, with backoff between attempts.
  int64_t retry_deadline_ms = 15000;
};

struct ConsumedRecord {
  int64_t offset = 0;
  v1::Record record;
  int64_t batch_max_timestamp_ms = 0;  // the time to show when the record carries none
};

struct FetchResult {
  std::vector<ConsumedRecord> records;  // offsets ascending, all >= the requested offset
  int64_t next_offset = 0;              // where the next Fetch should start
  int64_t high_watermark = 0;
  int64_t log_start_offset = 0;
};

// The records of a successful FetchResponse at or after `offset` (a batch may start before
// it). Pure: decodes with DecodeRecordBatch and checks that offsets are contiguous per batch.
Result<FetchResult> DecodeFetchResponse(const v1::FetchResponse& response, int64_t offset,
                                        const BatchLimits& limits = {});

class Consumer {
 public:
  explicit Consumer(Client& client) : client_(client) {}

  Result<FetchResult> Fetch(const std::string& topic, int32_t partition, int64_t offset,
                            const FetchOptions& options = {});

  // ListOffsets: the log start (EARLIEST), the high watermark (LATEST) or the first offset at
  // or after a timestamp.
  Result<int64_t> ListOffset(const std::string& topic, int32_t partition, v1::OffsetSpec spec,
                             int64_t timestamp_ms = 0, int64_t retry_deadline_ms = 15000);

 private:
  Client& client_;
};

}  // namespace skiff::client

// Encoding, decoding and validation of skiff.v1.RecordBatch — shared by the broker (which
// validates every batch before writing it), the client (which builds batches) and tools.
//
// Grammar of a batch's `records` field (see proto/skiff/v1/records.proto):
//   records    = compress(compression, serialize(RecordSet))
//   crc32c     = CRC32C(records)                      -- over the bytes as sent
//   record_count = |RecordSet.records| >= 1
//
// Lives in its own target (skiff_batch) because it needs protobuf and the compressors, which
// the pure Raft core (also linked to skiff_common) must not.
#pragma once

#include <cstdint>
#include <vector>

#include "common/status.h"
#include "skiff/v1/records.pb.h"

namespace skiff {

struct BatchLimits {
  int64_t max_batch_bytes = 1 << 20;          // the topic's max_message_bytes
  int64_t max_decompressed_bytes = 64 << 20;  // guards against decompression bombs
};

// Builds a batch from records: serializes, compresses, fills record_count, timestamps and
// crc32c. producer fields are left for the caller (producer_id = -1: not idempotent).
Result<v1::RecordBatch> BuildRecordBatch(const std::vector<v1::Record>& records,
                                         v1::Compression compression);

// Decodes the records of a batch, verifying the CRC (when present), decompression and the
// record count. Errors: kCorruption (CRC mismatch), kInvalidArgument (anything malformed).
Result<v1::RecordSet> DecodeRecordBatch(const v1::RecordBatch& batch, const BatchLimits& limits);

// Everything a leader checks before it writes a batch: size against the limit, then what
// DecodeRecordBatch checks. Fills in crc32c when the client left it unset.
// Errors: kResourceExhausted-like size violations are reported as kOutOfRange ("too large"),
// kCorruption for a CRC mismatch, kInvalidArgument for malformed content.
Status ValidateRecordBatchForAppend(v1::RecordBatch& batch, const BatchLimits& limits);

// Compression helpers, exposed for tests and tools.
Result<std::string> Compress(v1::Compression compression, std::string_view data);
Result<std::string> Decompress(v1::Compression compression, std::string_view data,
                               int64_t max_output_bytes);

}  // namespace skiff

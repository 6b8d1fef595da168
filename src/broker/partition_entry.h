// The Raft entry data of a record batch in a partition's Raft group.
//
// Grammar (all integers little-endian, fixed width):
//   entry  = version:u8(=1) record_count:u32 max_timestamp_ms:i64 producer_id:i64
//            producer_epoch:i32 base_sequence:i32 batch
//   batch  = serialize(v1::RecordBatch) with base_offset = 0
//
// The header duplicates a few batch fields so that the hot paths that see every stored entry
// (storage's offset index, the producer-sequence state machine) never parse protobuf. The batch
// carries no offset: an entry's offsets are its position in the log, assigned by storage when
// the entry is appended, so a replica never trusts an offset it was sent.
//
// Pure functions over bytes; thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/ids.h"
#include "common/status.h"
#include "raft/types.h"
#include "skiff/v1/records.pb.h"
#include "storage/key_format.h"

namespace skiff::broker {

inline constexpr uint8_t kBatchEntryVersion = 1;
inline constexpr size_t kBatchEntryHeaderSize = 1 + 4 + 8 + 8 + 4 + 4;

struct BatchEntryHeader {
  uint32_t record_count = 0;
  int64_t max_timestamp_ms = -1;
  int64_t producer_id = -1;  // < 0: not idempotent
  int32_t producer_epoch = 0;
  int32_t base_sequence = 0;
  friend bool operator==(const BatchEntryHeader&, const BatchEntryHeader&) = default;
};

// The header fields of `batch`, as EncodeBatchEntry writes them.
BatchEntryHeader HeaderOfBatch(const v1::RecordBatch& batch);

// The entry data of `batch`: the header, then the batch with base_offset cleared to 0.
// Precondition: the batch has been through ValidateRecordBatchForAppend (record_count >= 1,
// crc32c set); DecodeBatchEntry refuses a batch without a crc32c.
std::string EncodeBatchEntry(const v1::RecordBatch& batch);

// Reads only the fixed header; no protobuf parse. kCorruption on a buffer shorter than the
// header or an unknown version.
Result<BatchEntryHeader> DecodeBatchEntryHeader(std::string_view data);

// The batch of an entry, with base_offset = `base_offset`. kCorruption if the header does not
// decode, the batch does not parse, the batch disagrees with the header, or its crc32c is
// missing or does not match its records bytes. Records are not decompressed.
Result<v1::RecordBatch> DecodeBatchEntry(std::string_view data, Offset base_offset);

// The storage::EntryClassifier of partition groups. A non-empty kNormal entry is a batch:
// record_count and max_timestamp_ms come from its header. Empty kNormal entries (a leader's
// no-op) and kConfChange entries take no offsets. An entry whose header does not decode counts
// as 0 records: only a bug can put one in the log (entries are encoded by the leader and
// CRC-checked in transit and at rest), and a classifier must not crash a replica over it.
// Deterministic, so every replica assigns the same offsets.
storage::EntryRecordInfo ClassifyPartitionEntry(const raft::Entry& entry);

}  // namespace skiff::broker

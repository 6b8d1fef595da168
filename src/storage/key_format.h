// Key and value encodings of the partition log in RocksDB (grammar: docs/formats/partition_log.md).
//
// Keys are big-endian so that RocksDB's bytewise order is (group id, index) order: one group's
// entries are contiguous, a prefix or a suffix of a group is one DeleteRange, and the last entry
// of a group is one SeekForPrev. Every stored value is sealed: a little-endian CRC32C of the
// body followed by the body. Unseal() refuses a value whose checksum does not match, so a damaged
// value is reported as kCorruption and never served.
//
// Pure functions over bytes; no RocksDB types. Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "raft/types.h"

namespace skiff::storage {

// ---- keys ----

inline constexpr size_t kGroupKeySize = 8;
inline constexpr size_t kIndexedKeySize = 16;

// Tags of the per-group rows in the raft-state column family.
enum class StateTag : uint8_t {
  kHardState = 1,
  kConfState = 2,
  kApplied = 3,
  kLogMeta = 4,       // compacted prefix and log start offset
  kSnapshotMeta = 5,  // meta of the latest snapshot (its data lives in the snapshot family)
};

// (group, n) as 16 big-endian bytes: the key of a log entry (n = raft index) or of an offset
// index row (n = base offset of a batch).
std::string IndexedKey(uint64_t group, uint64_t n);
// Decodes an IndexedKey; nullopt if the size is wrong.
std::optional<std::pair<uint64_t, uint64_t>> DecodeIndexedKey(std::string_view key);
// (group, tag): a row of the raft-state family.
std::string StateKey(uint64_t group, StateTag tag);
// (group): the key of the snapshot family.
std::string GroupKey(uint64_t group);

// ---- sealed values ----

// crc32c(body) as fixed32le, then body.
std::string Seal(std::string_view body);
// The body of a sealed value; kCorruption if it is too short or its checksum does not match.
Result<std::string_view> Unseal(std::string_view value, std::string_view what);

// ---- bodies ----

// What is known about an entry's records. record_count == 0 for entries that are not record
// batches (configuration changes, the leader's no-op): they take no offsets.
struct EntryRecordInfo {
  uint32_t record_count = 0;
  int64_t max_timestamp_ms = -1;
  friend bool operator==(const EntryRecordInfo&, const EntryRecordInfo&) = default;
};

// A log entry as stored: the raft entry plus its place in the partition's offset space, so the
// offset index can be rebuilt from the log alone.
struct StoredEntry {
  raft::Entry entry;
  uint64_t base_offset = 0;  // offset of the entry's first record (= log end offset before it)
  EntryRecordInfo info;
};
// The stored value of an entry is EncodeEntryHeader(...) followed by entry.data; the header
// starts with the CRC32C of everything after it (header fields and data), so the payload is
// never copied to build the value (RocksDB's SliceParts joins the two).
inline constexpr size_t kEntryHeaderSize = 4 + 30;
std::string EncodeEntryHeader(const raft::Entry& entry, uint64_t base_offset,
                              const EntryRecordInfo& info);
// body = an Unseal()ed entry value; index is taken from the key. kCorruption if malformed.
Result<StoredEntry> DecodeEntryBody(std::string_view body, raft::Index index);
// Only the term, without copying the payload.
Result<raft::Term> DecodeEntryTerm(std::string_view body);
// Everything but the payload, whose size goes to *data_size.
Result<StoredEntry> DecodeEntryHeaderOnly(std::string_view body, raft::Index index,
                                          uint64_t* data_size);

// A row of the offset index: a span of consecutive record batches, keyed by the base offset of
// its first record. The span holds entries first_index..last_index (entries between them
// without records take no offsets). One row per span instead of one per batch: a row costs a
// memtable insert as dear as the entry's own, and halving the inserts was the largest gain
// measured for synced appends (see storage_bench).
struct OffsetRow {
  raft::Index first_index = 0;
  raft::Index last_index = 0;
  uint32_t record_count = 0;            // records in the span
  int64_t max_timestamp_ms = -1;        // newest batch timestamp in the span; -1: none known
  int64_t min_batch_timestamp_ms = -1;  // smallest batch max timestamp; -1 if one has none
  uint64_t size_bytes = 0;              // entry payload bytes of the span
  friend bool operator==(const OffsetRow&, const OffsetRow&) = default;
};
std::string EncodeOffsetRow(const OffsetRow& row);
// Also reads the first format's one-batch rows (raft_index, count, timestamp, size).
Result<OffsetRow> DecodeOffsetRow(std::string_view body);

// The compacted prefix of a group's log: entries (0, compacted_index] are gone; the entry at
// compacted_index had compacted_term; the first record still stored has log_start_offset.
struct LogMeta {
  raft::Index compacted_index = 0;
  raft::Term compacted_term = 0;
  uint64_t log_start_offset = 0;
  friend bool operator==(const LogMeta&, const LogMeta&) = default;
};
std::string EncodeLogMeta(const LogMeta& meta);
Result<LogMeta> DecodeLogMeta(std::string_view body);

std::string EncodeHardState(const raft::HardState& hs);
Result<raft::HardState> DecodeHardState(std::string_view body);
std::string EncodeConfState(const raft::ConfState& cs);
Result<raft::ConfState> DecodeConfState(std::string_view body);
std::string EncodeU64(uint64_t v);
Result<uint64_t> DecodeU64(std::string_view body);

// Snapshot meta plus the partition offset that follows the snapshot (the log start offset of
// a log restarted from it).
struct StoredSnapshotMeta {
  raft::SnapshotMeta meta;
  uint64_t next_offset = 0;
  friend bool operator==(const StoredSnapshotMeta&, const StoredSnapshotMeta&) = default;
};
std::string EncodeSnapshotMeta(const StoredSnapshotMeta& meta);
Result<StoredSnapshotMeta> DecodeSnapshotMeta(std::string_view body);

}  // namespace skiff::storage

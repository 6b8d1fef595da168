#include "broker/partition_entry.h"
#include "common/coding.h"

#include <cstring>

#include "common/crc32c.h"

namespace skiff::broker {
namespace {}  // namespace

BatchEntryHeader HeaderOfBatch(const v1::RecordBatch& batch) {
  BatchEntryHeader header;
  header.record_count = static_cast<uint32_t>(batch.record_count());
  header.max_timestamp_ms = batch.max_timestamp_ms();
  header.producer_id = batch.producer_id();
  header.producer_epoch = batch.producer_epoch();
  header.base_sequence = batch.base_sequence();
  return header;
}

std::string EncodeBatchEntry(const v1::RecordBatch& batch) {
  const BatchEntryHeader header = HeaderOfBatch(batch);
  std::string out;
  out.reserve(kBatchEntryHeaderSize + batch.ByteSizeLong());
  out.push_back(static_cast<char>(kBatchEntryVersion));
  PutFixed32(out, header.record_count);
  PutFixed64(out, static_cast<uint64_t>(header.max_timestamp_ms));
  PutFixed64(out, static_cast<uint64_t>(header.producer_id));
  PutFixed32(out, static_cast<uint32_t>(header.producer_epoch));
  PutFixed32(out, static_cast<uint32_t>(header.base_sequence));
  if (batch.base_offset() == 0) {
    batch.AppendToString(&out);
  } else {
    // Copying the batch to clear one field costs a copy of the records; only a caller that
    // left an offset in (e.g. re-encoding a fetched batch) pays it.
    v1::RecordBatch copy = batch;
    copy.set_base_offset(0);
    copy.AppendToString(&out);
  }
  return out;
}

Result<BatchEntryHeader> DecodeBatchEntryHeader(std::string_view data) {
  if (data.size() < kBatchEntryHeaderSize) {
    return CorruptionError("batch entry of " + std::to_string(data.size()) +
                           " bytes is shorter than its " + std::to_string(kBatchEntryHeaderSize) +
                           "-byte header");
  }
  const auto version = static_cast<uint8_t>(data[0]);
  if (version != kBatchEntryVersion) {
    return CorruptionError("batch entry has unknown version " + std::to_string(version));
  }
  const char* p = data.data() + 1;
  BatchEntryHeader header;
  header.record_count = GetFixed32(p);
  header.max_timestamp_ms = static_cast<int64_t>(GetFixed64(p + 4));
  header.producer_id = static_cast<int64_t>(GetFixed64(p + 12));
  header.producer_epoch = static_cast<int32_t>(GetFixed32(p + 20));
  header.base_sequence = static_cast<int32_t>(GetFixed32(p + 24));
  return header;
}

Result<v1::RecordBatch> DecodeBatchEntry(std::string_view data, Offset base_offset) {
  SKIFF_ASSIGN_OR_RETURN(BatchEntryHeader header, DecodeBatchEntryHeader(data));
  v1::RecordBatch batch;
  const std::string_view body = data.substr(kBatchEntryHeaderSize);
  if (!batch.ParseFromArray(body.data(), static_cast<int>(body.size()))) {
    return CorruptionError("batch entry does not parse as a RecordBatch");
  }
  if (HeaderOfBatch(batch) != header) {
    return CorruptionError("batch entry header disagrees with its batch");
  }
  if (!batch.has_crc32c()) {
    return CorruptionError("batch entry has no crc32c");
  }
  const uint32_t crc = Crc32c(batch.records());
  if (crc != batch.crc32c()) {
    return CorruptionError("batch entry crc32c mismatch: stored " + std::to_string(batch.crc32c()) +
                           ", computed " + std::to_string(crc));
  }
  batch.set_base_offset(base_offset.value());
  return batch;
}

storage::EntryRecordInfo ClassifyPartitionEntry(const raft::Entry& entry) {
  if (entry.type != raft::EntryType::kNormal || entry.data.empty()) return {};
  Result<BatchEntryHeader> header = DecodeBatchEntryHeader(entry.data.view());
  // A bug put an undecodable entry in the log; giving it no offsets keeps every replica alive
  // and in agreement (they all see the same bytes), and reads of it report the corruption.
  if (!header.ok()) return {};
  return storage::EntryRecordInfo{header->record_count, header->max_timestamp_ms};
}

}  // namespace skiff::broker

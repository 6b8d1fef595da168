#include "broker/partition_entry.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/record_batch.h"

namespace skiff::broker {
namespace {

v1::RecordBatch MakeBatch(int records, int64_t producer_id = -1) {
  std::vector<v1::Record> list;
  for (int i = 0; i < records; ++i) {
    v1::Record r;
    r.set_key("k" + std::to_string(i));
    r.set_value(std::string(100, static_cast<char>('a' + i % 26)));
    r.set_timestamp_ms(1000 + i);
    list.push_back(r);
  }
  Result<v1::RecordBatch> batch = BuildRecordBatch(list, v1::COMPRESSION_NONE);
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  v1::RecordBatch out = *batch;
  out.set_producer_id(producer_id);
  out.set_producer_epoch(3);
  out.set_base_sequence(17);
  EXPECT_TRUE(ValidateRecordBatchForAppend(out, BatchLimits{}).ok());
  return out;
}

TEST(PartitionEntryTest, RoundTripsBatchAndHeader) {
  v1::RecordBatch batch = MakeBatch(4, 77);
  const std::string data = EncodeBatchEntry(batch);

  Result<BatchEntryHeader> header = DecodeBatchEntryHeader(data);
  ASSERT_TRUE(header.ok()) << header.status().ToString();
  EXPECT_EQ(header->record_count, 4u);
  EXPECT_EQ(header->max_timestamp_ms, batch.max_timestamp_ms());
  EXPECT_EQ(header->producer_id, 77);
  EXPECT_EQ(header->producer_epoch, 3);
  EXPECT_EQ(header->base_sequence, 17);
  EXPECT_EQ(*header, HeaderOfBatch(batch));

  Result<v1::RecordBatch> decoded = DecodeBatchEntry(data, Offset(1234));
  ASSERT_TRUE(decoded.ok()) << decoded.status().ToString();
  v1::RecordBatch expected = batch;
  expected.set_base_offset(1234);
  EXPECT_EQ(decoded->SerializeAsString(), expected.SerializeAsString());
}

TEST(PartitionEntryTest, BaseOffsetIsNotStored) {
  v1::RecordBatch batch = MakeBatch(2);
  const std::string without = EncodeBatchEntry(batch);
  batch.set_base_offset(999);
  EXPECT_EQ(EncodeBatchEntry(batch), without);
  Result<v1::RecordBatch> decoded = DecodeBatchEntry(without, Offset(5));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->base_offset(), 5);
}

TEST(PartitionEntryTest, HeaderLayoutIsFixedLittleEndian) {
  v1::RecordBatch batch = MakeBatch(1);
  batch.set_record_count(1);
  batch.set_max_timestamp_ms(0x0102030405060708);
  batch.set_producer_id(-2);
  batch.set_producer_epoch(0x11223344);
  batch.set_base_sequence(0x55667788);
  const std::string data = EncodeBatchEntry(batch);
  ASSERT_GE(data.size(), kBatchEntryHeaderSize);
  const std::string expected_header(
      "\x01"
      "\x01\x00\x00\x00"
      "\x08\x07\x06\x05\x04\x03\x02\x01"
      "\xfe\xff\xff\xff\xff\xff\xff\xff"
      "\x44\x33\x22\x11"
      "\x88\x77\x66\x55",
      kBatchEntryHeaderSize);
  EXPECT_EQ(data.substr(0, kBatchEntryHeaderSize), expected_header);
  v1::RecordBatch body;
  ASSERT_TRUE(body.ParseFromString(data.substr(kBatchEntryHeaderSize)));
  EXPECT_EQ(body.SerializeAsString(), batch.SerializeAsString());
}

TEST(PartitionEntryTest, EveryShortBufferIsCorruption) {
  const std::string data = EncodeBatchEntry(MakeBatch(1));
  for (size_t n = 0; n < kBatchEntryHeaderSize; ++n) {
    EXPECT_EQ(DecodeBatchEntryHeader(data.substr(0, n)).status().code(), StatusCode::kCorruption)
        << n;
    EXPECT_EQ(DecodeBatchEntry(data.substr(0, n), Offset(0)).status().code(),
              StatusCode::kCorruption)
        << n;
  }
  // A header alone decodes; the batch it announces is missing.
  EXPECT_TRUE(DecodeBatchEntryHeader(data.substr(0, kBatchEntryHeaderSize)).ok());
  EXPECT_EQ(DecodeBatchEntry(data.substr(0, kBatchEntryHeaderSize), Offset(0)).status().code(),
            StatusCode::kCorruption);
}

TEST(PartitionEntryTest, UnknownVersionIsCorruption) {
  std::string data = EncodeBatchEntry(MakeBatch(1));
  for (int version : {0, 2, 255}) {
    data[0] = static_cast<char>(version);
    EXPECT_EQ(DecodeBatchEntryHeader(data).status().code(), StatusCode::kCorruption);
    EXPECT_EQ(DecodeBatchEntry(data, Offset(0)).status().code(), StatusCode::kCorruption);
  }
}

TEST(PartitionEntryTest, EveryHeaderByteFlipIsCaughtByFullDecode) {
  const std::string data = EncodeBatchEntry(MakeBatch(3, 5));
  for (size_t i = 0; i < kBatchEntryHeaderSize; ++i) {
    std::string bad = data;
    bad[i] = static_cast<char>(bad[i] ^ 0x10);
    EXPECT_EQ(DecodeBatchEntry(bad, Offset(0)).status().code(), StatusCode::kCorruption) << i;
  }
}

TEST(PartitionEntryTest, EveryRecordsByteFlipIsCorruption) {
  const v1::RecordBatch batch = MakeBatch(3, 5);
  const std::string data = EncodeBatchEntry(batch);
  const size_t start = data.find(batch.records());
  ASSERT_NE(start, std::string::npos);
  for (size_t i = start; i < start + batch.records().size(); ++i) {
    std::string bad = data;
    bad[i] = static_cast<char>(bad[i] ^ 0x01);
    EXPECT_EQ(DecodeBatchEntry(bad, Offset(0)).status().code(), StatusCode::kCorruption) << i;
  }
}

TEST(PartitionEntryTest, TruncatedBatchIsCorruption) {
  const std::string data = EncodeBatchEntry(MakeBatch(3));
  for (size_t n = kBatchEntryHeaderSize; n < data.size(); ++n) {
    EXPECT_EQ(DecodeBatchEntry(data.substr(0, n), Offset(0)).status().code(),
              StatusCode::kCorruption)
        << n;
  }
}

TEST(PartitionEntryTest, MissingCrcIsCorruption) {
  v1::RecordBatch batch = MakeBatch(2);
  batch.clear_crc32c();
  EXPECT_EQ(DecodeBatchEntry(EncodeBatchEntry(batch), Offset(0)).status().code(),
            StatusCode::kCorruption);
}

raft::Entry MakeEntry(raft::EntryType type, std::string data) {
  raft::Entry entry;
  entry.term = 1;
  entry.index = 1;
  entry.type = type;
  entry.data = Bytes(std::move(data));
  return entry;
}

TEST(PartitionEntryTest, ClassifierCountsBatchesOnly) {
  v1::RecordBatch batch = MakeBatch(7);
  batch.set_max_timestamp_ms(424242);
  EXPECT_EQ(ClassifyPartitionEntry(MakeEntry(raft::EntryType::kNormal, EncodeBatchEntry(batch))),
            (storage::EntryRecordInfo{7, 424242}));
  EXPECT_EQ(ClassifyPartitionEntry(MakeEntry(raft::EntryType::kNormal, "")),
            storage::EntryRecordInfo{});
  const raft::ConfChange cc{raft::ConfChangeType::kAddVoter, 3};
  EXPECT_EQ(
      ClassifyPartitionEntry(MakeEntry(raft::EntryType::kConfChange, raft::EncodeConfChange(cc))),
      storage::EntryRecordInfo{});
  // A conf change never counts, even if its bytes happen to look like a batch header.
  EXPECT_EQ(
      ClassifyPartitionEntry(MakeEntry(raft::EntryType::kConfChange, EncodeBatchEntry(batch))),
      storage::EntryRecordInfo{});
}

TEST(PartitionEntryTest, ClassifierGivesUndecodableEntriesNoOffsets) {
  EXPECT_EQ(ClassifyPartitionEntry(MakeEntry(raft::EntryType::kNormal, "garbage")),
            storage::EntryRecordInfo{});
  std::string data = EncodeBatchEntry(MakeBatch(2));
  data[0] = 9;
  EXPECT_EQ(ClassifyPartitionEntry(MakeEntry(raft::EntryType::kNormal, data)),
            storage::EntryRecordInfo{});
}

}  // namespace
}  // namespace skiff::broker

#include "common/record_batch.h"

#include <gtest/gtest.h>

#include "common/crc32c.h"

namespace skiff {
namespace {

std::vector<v1::Record> SampleRecords(int n) {
  std::vector<v1::Record> records;
  for (int i = 0; i < n; ++i) {
    v1::Record r;
    r.set_key("k" + std::to_string(i));
    r.set_value(std::string(100, static_cast<char>('a' + i % 26)));
    r.set_timestamp_ms(1700000000000 + i);
    auto* h = r.add_headers();
    h->set_name("trace");
    h->set_value("id-" + std::to_string(i));
    records.push_back(r);
  }
  return records;
}

class RecordBatchCompressionTest : public ::testing::TestWithParam<v1::Compression> {};

TEST_P(RecordBatchCompressionTest, BuildThenDecodeGivesTheRecordsBack) {
  auto records = SampleRecords(10);
  Result<v1::RecordBatch> batch = BuildRecordBatch(records, GetParam());
  ASSERT_TRUE(batch.ok()) << batch.status().ToString();
  EXPECT_EQ(batch->record_count(), 10);
  EXPECT_EQ(batch->first_timestamp_ms(), 1700000000000);
  EXPECT_EQ(batch->max_timestamp_ms(), 1700000000009);
  EXPECT_EQ(batch->crc32c(), Crc32c(batch->records()));
  Result<v1::RecordSet> set = DecodeRecordBatch(*batch, BatchLimits{});
  ASSERT_TRUE(set.ok()) << set.status().ToString();
  ASSERT_EQ(set->records_size(), 10);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(set->records(i).SerializeAsString(), records[i].SerializeAsString()) << i;
  }
}

TEST_P(RecordBatchCompressionTest, EveryFlippedBitIsCaughtByTheChecksum) {
  Result<v1::RecordBatch> batch = BuildRecordBatch(SampleRecords(3), GetParam());
  ASSERT_TRUE(batch.ok());
  const std::string original = batch->records();
  for (size_t byte = 0; byte < original.size(); ++byte) {
    v1::RecordBatch damaged = *batch;
    std::string bytes = original;
    bytes[byte] = static_cast<char>(bytes[byte] ^ (1 << (byte % 8)));
    damaged.set_records(bytes);
    Result<v1::RecordSet> set = DecodeRecordBatch(damaged, BatchLimits{});
    ASSERT_FALSE(set.ok()) << "byte " << byte;
    EXPECT_EQ(set.status().code(), StatusCode::kCorruption) << "byte " << byte;
  }
}

TEST_P(RecordBatchCompressionTest, TruncatedPayloadWithoutCrcIsInvalidNotACrash) {
  Result<v1::RecordBatch> batch = BuildRecordBatch(SampleRecords(5), GetParam());
  ASSERT_TRUE(batch.ok());
  const std::string original = batch->records();
  for (size_t len = 0; len < original.size(); len += 7) {
    v1::RecordBatch cut = *batch;
    cut.clear_crc32c();
    cut.set_records(original.substr(0, len));
    Result<v1::RecordSet> set = DecodeRecordBatch(cut, BatchLimits{});
    // A prefix may happen to parse as fewer records; it must never pass the count check.
    EXPECT_FALSE(set.ok()) << "length " << len;
  }
}

INSTANTIATE_TEST_SUITE_P(AllCodecs, RecordBatchCompressionTest,
                         ::testing::Values(v1::COMPRESSION_NONE, v1::COMPRESSION_ZSTD,
                                           v1::COMPRESSION_LZ4));

TEST(RecordBatchTest, EmptyBatchIsRefused) {
  EXPECT_EQ(BuildRecordBatch({}, v1::COMPRESSION_NONE).status().code(),
            StatusCode::kInvalidArgument);
  v1::RecordBatch empty;
  EXPECT_EQ(DecodeRecordBatch(empty, BatchLimits{}).status().code(), StatusCode::kInvalidArgument);
}

TEST(RecordBatchTest, CountMismatchIsInvalid) {
  Result<v1::RecordBatch> batch = BuildRecordBatch(SampleRecords(4), v1::COMPRESSION_NONE);
  ASSERT_TRUE(batch.ok());
  batch->set_record_count(5);
  Result<v1::RecordSet> set = DecodeRecordBatch(*batch, BatchLimits{});
  EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(set.status().message().find("record_count"), std::string::npos);
}

TEST(RecordBatchTest, GarbageRecordsAreInvalid) {
  v1::RecordBatch batch;
  batch.set_record_count(1);
  batch.set_records(std::string("\xff\xff\xff\xff\xff\xff\xff", 7));
  EXPECT_EQ(DecodeRecordBatch(batch, BatchLimits{}).status().code(), StatusCode::kInvalidArgument);
  batch.set_compression(v1::COMPRESSION_ZSTD);
  EXPECT_EQ(DecodeRecordBatch(batch, BatchLimits{}).status().code(), StatusCode::kInvalidArgument);
  batch.set_compression(static_cast<v1::Compression>(99));
  EXPECT_EQ(DecodeRecordBatch(batch, BatchLimits{}).status().code(), StatusCode::kInvalidArgument);
}

TEST(RecordBatchTest, DecompressionBombIsStopped) {
  v1::Record r;
  r.set_value(std::string(8 << 20, 'z'));  // compresses to almost nothing
  Result<v1::RecordBatch> batch = BuildRecordBatch({r}, v1::COMPRESSION_ZSTD);
  ASSERT_TRUE(batch.ok());
  EXPECT_LT(batch->records().size(), 4096u);
  BatchLimits limits;
  limits.max_decompressed_bytes = 1 << 20;
  Result<v1::RecordSet> set = DecodeRecordBatch(*batch, limits);
  EXPECT_EQ(set.status().code(), StatusCode::kInvalidArgument);
}

TEST(RecordBatchTest, AppendValidationEnforcesSizeAndFillsCrc) {
  Result<v1::RecordBatch> batch = BuildRecordBatch(SampleRecords(20), v1::COMPRESSION_NONE);
  ASSERT_TRUE(batch.ok());
  v1::RecordBatch no_crc = *batch;
  no_crc.clear_crc32c();
  EXPECT_TRUE(ValidateRecordBatchForAppend(no_crc, BatchLimits{}).ok());
  EXPECT_TRUE(no_crc.has_crc32c());
  EXPECT_EQ(no_crc.crc32c(), batch->crc32c());

  BatchLimits tight;
  tight.max_batch_bytes = 100;
  v1::RecordBatch big = *batch;
  EXPECT_EQ(ValidateRecordBatchForAppend(big, tight).code(), StatusCode::kOutOfRange);
}

}  // namespace
}  // namespace skiff

#include <gtest/gtest.h>

#include "client/consumer.h"

namespace skiff::client {
namespace {

v1::RecordBatch Batch(int64_t base_offset, const std::vector<std::string>& values) {
  std::vector<v1::Record> records;
  for (const std::string& v : values) {
    v1::Record r;
    r.set_value(v);
    records.push_back(r);
  }
  Result<v1::RecordBatch> batch = BuildRecordBatch(records, v1::COMPRESSION_NONE);
  EXPECT_TRUE(batch.ok()) << batch.status().ToString();
  v1::RecordBatch out = *batch;
  out.set_base_offset(base_offset);
  return out;
}

TEST(DecodeFetchResponse, SkipsRecordsBeforeTheRequestedOffset) {
  v1::FetchResponse response;
  *response.add_batches() = Batch(10, {"a", "b", "c"});
  *response.add_batches() = Batch(13, {"d", "e"});
  response.set_high_watermark(15);
  response.set_log_start_offset(0);
  Result<FetchResult> result = DecodeFetchResponse(response, 12);
  ASSERT_TRUE(result.ok()) << result.status().ToString();
  ASSERT_EQ(result->records.size(), 3u);
  EXPECT_EQ(result->records[0].offset, 12);
  EXPECT_EQ(result->records[0].record.value(), "c");
  EXPECT_EQ(result->records[2].offset, 14);
  EXPECT_EQ(result->records[2].record.value(), "e");
  EXPECT_EQ(result->next_offset, 15);
  EXPECT_EQ(result->high_watermark, 15);
}

TEST(DecodeFetchResponse, EmptyResponseKeepsTheOffset) {
  v1::FetchResponse response;
  response.set_high_watermark(5);
  Result<FetchResult> result = DecodeFetchResponse(response, 5);
  ASSERT_TRUE(result.ok());
  EXPECT_TRUE(result->records.empty());
  EXPECT_EQ(result->next_offset, 5);
}

TEST(DecodeFetchResponse, CorruptBatchIsAnError) {
  v1::FetchResponse response;
  v1::RecordBatch batch = Batch(0, {"a"});
  batch.set_crc32c(batch.crc32c() ^ 1);
  *response.add_batches() = batch;
  Result<FetchResult> result = DecodeFetchResponse(response, 0);
  EXPECT_EQ(result.status().code(), StatusCode::kCorruption);
}

TEST(DecodeFetchResponse, GapBetweenBatchesIsAnError) {
  v1::FetchResponse response;
  *response.add_batches() = Batch(0, {"a"});
  *response.add_batches() = Batch(5, {"b"});
  EXPECT_FALSE(DecodeFetchResponse(response, 0).ok());
}

}  // namespace
}  // namespace skiff::client

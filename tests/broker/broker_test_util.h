// Helpers shared by the in-process broker tests.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "common/record_batch.h"
#include "common/reserved_port.h"
#include "skiff/v1/fetch.pb.h"
#include "skiff/v1/records.pb.h"

namespace skiff::broker::testing {

// A batch of records with these values (not idempotent unless producer_id >= 0).
inline v1::RecordBatch MakeBatch(const std::vector<std::string>& values, int64_t producer_id = -1,
                                 int32_t epoch = 0, int32_t sequence = 0) {
  std::vector<v1::Record> records;
  for (const auto& v : values) {
    v1::Record r;
    r.set_value(v);
    records.push_back(r);
  }
  auto batch = BuildRecordBatch(records, v1::COMPRESSION_NONE);
  EXPECT_TRUE(batch.ok());
  batch->set_producer_id(producer_id);
  batch->set_producer_epoch(epoch);
  batch->set_base_sequence(sequence);
  return *batch;
}

// The values of every record in a fetch response, in order.
inline std::vector<std::string> Values(const v1::FetchResponse& resp) {
  std::vector<std::string> out;
  for (const auto& b : resp.batches()) {
    auto set = DecodeRecordBatch(b, BatchLimits{});
    EXPECT_TRUE(set.ok());
    for (const auto& r : set->records()) out.push_back(r.value());
  }
  return out;
}

}  // namespace skiff::broker::testing

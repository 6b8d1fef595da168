// How the CLI shows results: one function per kind of result, rendering text (for people) or
// JSON (for scripts; one document per command, or one object per line for streams). Pure —
// they return strings — so the formats are unit-tested.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "client/consumer.h"
#include "skiff/v1/admin.pb.h"
#include "skiff/v1/metadata.pb.h"

namespace skiff::cli {

enum class Format { kText, kJson };

std::string FormatTopic(const v1::TopicMetadata& topic, const v1::TopicConfig* config,
                        Format format);
std::string FormatTopicList(const v1::ListTopicsResponse& list, Format format);
std::string FormatCluster(const v1::DescribeClusterResponse& cluster, Format format);
// One consumed record: the value (text) or {"offset","key","value","timestamp"} (json), with a
// trailing newline. Bytes that are not UTF-8 are replaced in JSON.
std::string FormatRecord(const client::ConsumedRecord& record, Format format);

struct ProduceSummary {
  std::string topic;
  int64_t records = 0;
  int64_t failed = 0;
  std::string first_error;  // empty when none failed
};
// One {"line","partition","offset"} per record (json) is printed as records are acknowledged;
// this is the final summary.
std::string FormatProduceSummary(const ProduceSummary& summary, Format format);
std::string FormatProduceAck(int64_t line, int32_t partition, int64_t offset);

struct BenchReport {
  std::string topic;
  int producers = 0;
  int partitions = 0;
  int record_size = 0;
  std::string acks;
  int window = 0;
  double seconds = 0;
  int64_t sent = 0;
  int64_t acked = 0;
  int64_t failed = 0;
  int64_t consumed = 0;
  bool verified = false;
  uint64_t p50_us = 0;
  uint64_t p99_us = 0;
  uint64_t p999_us = 0;
  uint64_t max_us = 0;
  std::string first_error;
};
std::string FormatBench(const BenchReport& report, Format format);

}  // namespace skiff::cli

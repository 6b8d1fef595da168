// produce and consume.
#include <csignal>
#include <cstdio>
#include <iostream>
#include <mutex>
#include <string>

#include "client/consumer.h"
#include "client/producer.h"
#include "command_util.h"
#include "commands.h"

namespace skiff::cli {
namespace {

std::atomic<bool> g_interrupted{false};
void OnInterrupt(int) { g_interrupted.store(true); }

}  // namespace

int RunProduce(const CliArgs& args) {
  Result<v1::Acks> acks = ParseAcks(args.acks);
  if (!acks.ok()) return ReportFailure("--acks", acks.status(), true);
  auto client = MakeClient(args);
  if (!client) return kExitUsage;
  const Format format = OutputFormat(args);

  client::ProducerOptions options;
  options.acks = *acks;
  // Without acks the broker cannot answer duplicates with offsets; idempotence buys nothing.
  options.idempotent = *acks != v1::ACKS_NONE;
  Result<std::unique_ptr<client::Producer>> producer = client::Producer::Create(*client, options);
  if (!producer.ok()) return ReportFailure("producer", producer.status());

  std::mutex mu;
  ProduceSummary summary;
  summary.topic = args.topic;
  std::string line;
  int64_t line_number = 0;
  while (std::getline(std::cin, line)) {
    v1::Record record;
    if (args.has_key) record.set_key(args.key);
    record.set_value(line);
    const int64_t this_line = ++line_number;
    Status status = (*producer)->Send(
        args.topic, args.partition, std::move(record),
        [&mu, &summary, format, this_line](const Result<client::RecordMetadata>& result) {
          std::lock_guard lock(mu);
          if (!result.ok()) {
            ++summary.failed;
            if (summary.first_error.empty()) summary.first_error = result.status().ToString();
            return;
          }
          if (format == Format::kJson) {
            std::fputs(FormatProduceAck(this_line, result->partition, result->offset).c_str(),
                       stdout);
          }
        });
    {
      std::lock_guard lock(mu);
      ++summary.records;
      if (!status.ok()) {
        ++summary.failed;
        if (summary.first_error.empty()) summary.first_error = status.ToString();
        break;  // refused up front (unknown topic, bad partition): the rest would be too
      }
    }
  }
  (*producer)->Close();
  std::lock_guard lock(mu);
  std::fputs(FormatProduceSummary(summary, format).c_str(), stdout);
  if (summary.failed > 0) {
    std::fprintf(stderr, "skiff: produce to %s: %lld record(s) failed: %s\n", args.topic.c_str(),
                 static_cast<long long>(summary.failed), summary.first_error.c_str());
    return kExitFailed;
  }
  return kExitOk;
}

int RunConsume(const CliArgs& args) {
  Result<StartOffset> start = ParseStartOffset(args.offset);
  if (!start.ok()) return ReportFailure("--offset", start.status(), true);
  auto client = MakeClient(args);
  if (!client) return kExitUsage;
  const Format format = OutputFormat(args);
  client::Consumer consumer(*client);

  int64_t offset = start->offset;
  if (start->kind != StartOffset::Kind::kExact) {
    Result<int64_t> listed =
        consumer.ListOffset(args.topic, args.partition,
                            start->kind == StartOffset::Kind::kEarliest ? v1::OFFSET_SPEC_EARLIEST
                                                                        : v1::OFFSET_SPEC_LATEST);
    if (!listed.ok()) return ReportFailure("list offsets of " + args.topic, listed.status());
    offset = *listed;
  }

  std::signal(SIGINT, OnInterrupt);
  std::signal(SIGTERM, OnInterrupt);
  client::FetchOptions options;
  options.max_wait_ms = args.follow ? 1000 : 100;
  int64_t printed = 0;
  int empty_in_a_row = 0;
  while (!g_interrupted.load()) {
    Result<client::FetchResult> fetched =
        consumer.Fetch(args.topic, args.partition, offset, options);
    if (!fetched.ok()) {
      std::fflush(stdout);
      return ReportFailure("fetch " + args.topic + "/" + std::to_string(args.partition),
                           fetched.status());
    }
    for (const client::ConsumedRecord& record : fetched->records) {
      std::fputs(FormatRecord(record, format).c_str(), stdout);
      if (args.max_records > 0 && ++printed >= args.max_records) return kExitOk;
    }
    std::fflush(stdout);
    offset = fetched->next_offset;
    if (!args.follow && offset >= fetched->high_watermark) break;
    // A broker that keeps answering nothing below the high watermark would spin us forever.
    empty_in_a_row = fetched->records.empty() ? empty_in_a_row + 1 : 0;
    if (!args.follow && empty_in_a_row >= 20) {
      return ReportFailure(
          "fetch " + args.topic,
          UnavailableError("no progress at offset " + std::to_string(offset) +
                           " below the high watermark " + std::to_string(fetched->high_watermark)));
    }
  }
  return kExitOk;
}

}  // namespace skiff::cli

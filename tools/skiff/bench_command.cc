// skiff bench: N producer threads send fixed-size records for a bounded time, then every
// partition is read back and the number of records written in the run must equal the number
// acknowledged. Latency is per record, from Send() to its acknowledgement.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <thread>

#include "client/consumer.h"
#include "client/producer.h"
#include "command_util.h"
#include "commands.h"
#include "latency_histogram.h"

namespace skiff::cli {
namespace {

using Clock = std::chrono::steady_clock;

// --outstanding caps the records a producer thread has in flight, so a slow cluster slows the
// producer down instead of filling memory. The bench is closed-loop: at saturation, the
// latency it reports includes the time records wait behind that many others; with
// --outstanding 1 it is the latency of one record alone.

struct ProducerThreadResult {
  LatencyHistogram latency;
  int64_t sent = 0;
  int64_t acked = 0;
  int64_t failed = 0;
  std::string first_error;
};

void ProduceFor(client::Producer& producer, const std::string& topic, int record_size,
                int64_t max_outstanding, Clock::time_point end, ProducerThreadResult& out) {
  std::mutex mu;
  std::condition_variable cv;
  int64_t outstanding = 0;
  const std::string payload(static_cast<size_t>(record_size), 'x');
  while (Clock::now() < end) {
    {
      std::unique_lock lock(mu);
      // Bounded by `end`: wakes at least then.
      cv.wait_until(lock, end, [&] { return outstanding < max_outstanding; });
      if (outstanding >= max_outstanding) break;
      ++outstanding;
    }
    v1::Record record;
    record.set_value(payload);
    const auto sent_at = Clock::now();
    Status status = producer.Send(
        topic, -1, std::move(record), [&, sent_at](const Result<client::RecordMetadata>& r) {
          const auto micros =
              std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent_at);
          std::lock_guard lock(mu);
          if (r.ok()) {
            ++out.acked;
            out.latency.Record(static_cast<uint64_t>(micros.count()));
          } else {
            ++out.failed;
            if (out.first_error.empty()) out.first_error = r.status().ToString();
          }
          --outstanding;
          cv.notify_all();
        });
    std::lock_guard lock(mu);
    if (!status.ok()) {
      --outstanding;
      ++out.failed;
      if (out.first_error.empty()) out.first_error = status.ToString();
      break;
    }
    ++out.sent;
  }
  // Waits for every callback, which touch `mu` and `out` on this stack.
  producer.Close();
}

}  // namespace

int RunBench(const CliArgs& args) {
  Result<v1::Acks> acks = ParseAcks(args.acks);
  if (!acks.ok()) return ReportFailure("--acks", acks.status(), true);
  auto client = MakeClient(args);
  if (!client) return kExitUsage;

  if (args.create) {
    v1::CreateTopicRequest request;
    request.set_name(args.topic);
    request.set_partitions(args.partitions);
    request.set_replication_factor(args.replication_factor);
    Result<v1::CreateTopicResponse> created = client->CreateTopic(request);
    if (!created.ok()) return ReportFailure("create topic " + args.topic, created.status());
  }
  Result<int32_t> partitions = client->PartitionCount(args.topic);
  if (!partitions.ok()) return ReportFailure("topic " + args.topic, partitions.status());

  // Where the run starts in each partition, so a topic with older data still verifies.
  client::Consumer consumer(*client);
  std::vector<int64_t> start_offsets;
  for (int32_t p = 0; p < *partitions; ++p) {
    Result<int64_t> latest = consumer.ListOffset(args.topic, p, v1::OFFSET_SPEC_LATEST);
    if (!latest.ok()) return ReportFailure("list offsets of " + args.topic, latest.status());
    start_offsets.push_back(*latest);
  }

  client::ProducerOptions options;
  options.acks = *acks;
  options.max_in_flight = args.window;
  options.linger_ms = args.linger_ms;
  options.batch_bytes = args.batch_kib * 1024;
  options.idempotent = *acks != v1::ACKS_NONE;
  std::vector<std::unique_ptr<client::Producer>> producers;
  for (int i = 0; i < args.producers; ++i) {
    Result<std::unique_ptr<client::Producer>> producer = client::Producer::Create(*client, options);
    if (!producer.ok()) return ReportFailure("producer", producer.status());
    producers.push_back(std::move(producer).value());
  }

  std::vector<ProducerThreadResult> results(static_cast<size_t>(args.producers));
  const auto begin = Clock::now();
  const auto end = begin + std::chrono::seconds(args.seconds);
  std::vector<std::thread> threads;
  for (int i = 0; i < args.producers; ++i) {
    threads.emplace_back([&, i] {
      ProduceFor(*producers[static_cast<size_t>(i)], args.topic, args.record_size, args.outstanding,
                 end, results[static_cast<size_t>(i)]);
    });
  }
  for (std::thread& t : threads) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();

  BenchReport report;
  report.topic = args.topic;
  report.producers = args.producers;
  report.partitions = *partitions;
  report.record_size = args.record_size;
  report.acks = args.acks;
  report.window = args.window;
  report.seconds = elapsed;
  LatencyHistogram latency;
  for (const ProducerThreadResult& r : results) {
    latency.Merge(r.latency);
    report.sent += r.sent;
    report.acked += r.acked;
    report.failed += r.failed;
    if (report.first_error.empty()) report.first_error = r.first_error;
  }
  report.p50_us = latency.Percentile(0.50);
  report.p99_us = latency.Percentile(0.99);
  report.p999_us = latency.Percentile(0.999);
  report.max_us = latency.max();

  // Read everything back. acks=none gives no offsets, but the count still has to match.
  client::FetchOptions fetch;
  fetch.max_wait_ms = 0;
  fetch.max_bytes = 8 << 20;
  for (int32_t p = 0; p < *partitions; ++p) {
    Result<int64_t> high = consumer.ListOffset(args.topic, p, v1::OFFSET_SPEC_LATEST);
    if (!high.ok()) return ReportFailure("list offsets of " + args.topic, high.status());
    int64_t offset = start_offsets[static_cast<size_t>(p)];
    // Bounded: each round advances `offset` or gives up.
    while (offset < *high) {
      Result<client::FetchResult> fetched = consumer.Fetch(args.topic, p, offset, fetch);
      if (!fetched.ok()) return ReportFailure("read back " + args.topic, fetched.status());
      if (fetched->next_offset <= offset) {
        return ReportFailure("read back " + args.topic,
                             UnavailableError("no progress at offset " + std::to_string(offset)));
      }
      for (const client::ConsumedRecord& r : fetched->records) {
        if (r.offset < *high) ++report.consumed;
      }
      offset = fetched->next_offset;
    }
  }
  report.verified = report.consumed == report.acked && report.failed == 0;
  std::fputs(FormatBench(report, OutputFormat(args)).c_str(), stdout);
  return report.verified ? kExitOk : kExitFailed;
}

}  // namespace skiff::cli

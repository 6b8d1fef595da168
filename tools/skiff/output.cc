#include "output.h"

#include <cstdio>
#include <nlohmann/json.hpp>
#include <sstream>

namespace skiff::cli {
namespace {

using nlohmann::json;

std::string Dump(const json& j) {
  // Keys and values are arbitrary bytes; never let a stray byte throw.
  return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string JoinIds(const google::protobuf::RepeatedField<int64_t>& ids) {
  std::string out;
  for (int64_t id : ids) out += (out.empty() ? "" : ",") + std::to_string(id);
  return out.empty() ? "-" : out;
}

json ConfigJson(const v1::TopicConfig& config) {
  json j = json::object();
  if (config.has_retention_ms()) j["retention_ms"] = config.retention_ms();
  if (config.has_retention_bytes()) j["retention_bytes"] = config.retention_bytes();
  if (config.has_max_message_bytes()) j["max_message_bytes"] = config.max_message_bytes();
  if (config.has_min_insync_replicas()) j["min_insync_replicas"] = config.min_insync_replicas();
  return j;
}

}  // namespace

std::string FormatTopic(const v1::TopicMetadata& topic, const v1::TopicConfig* config,
                        Format format) {
  if (format == Format::kJson) {
    json j = {{"name", topic.name()}, {"id", topic.id()}, {"internal", topic.internal()}};
    json partitions = json::array();
    for (const v1::PartitionMetadata& p : topic.partitions()) {
      partitions.push_back(
          {{"partition", p.partition()},
           {"leader", p.leader()},
           {"leader_epoch", p.leader_epoch()},
           {"replicas", std::vector<int64_t>(p.replicas().begin(), p.replicas().end())},
           {"in_sync", std::vector<int64_t>(p.in_sync().begin(), p.in_sync().end())},
           {"learners", std::vector<int64_t>(p.learners().begin(), p.learners().end())}});
    }
    j["partitions"] = partitions;
    if (config != nullptr) j["config"] = ConfigJson(*config);
    return Dump(j);
  }
  std::ostringstream out;
  out << "topic " << topic.name() << "  id " << (topic.id().empty() ? "-" : topic.id())
      << "  partitions " << topic.partitions_size() << (topic.internal() ? "  (internal)" : "")
      << "\n";
  for (const v1::PartitionMetadata& p : topic.partitions()) {
    out << "  partition " << p.partition() << "  leader "
        << (p.leader() < 0 ? std::string("none") : std::to_string(p.leader())) << "  epoch "
        << p.leader_epoch() << "  replicas " << JoinIds(p.replicas()) << "  in_sync "
        << JoinIds(p.in_sync()) << "\n";
  }
  if (config != nullptr) {
    const json values = ConfigJson(*config);  // items() must not outlive it
    for (const auto& [key, value] : values.items()) {
      out << "  config " << key << "=" << value.dump() << "\n";
    }
  }
  return out.str();
}

std::string FormatTopicList(const v1::ListTopicsResponse& list, Format format) {
  if (format == Format::kJson) {
    json topics = json::array();
    for (const v1::TopicSummary& t : list.topics()) {
      topics.push_back({{"name", t.name()},
                        {"partitions", t.partitions()},
                        {"replication_factor", t.replication_factor()}});
    }
    return Dump(json{{"topics", topics}});
  }
  std::ostringstream out;
  for (const v1::TopicSummary& t : list.topics()) {
    out << t.name() << "\tpartitions=" << t.partitions()
        << "\treplication_factor=" << t.replication_factor() << "\n";
  }
  return out.str();
}

std::string FormatCluster(const v1::DescribeClusterResponse& cluster, Format format) {
  if (format == Format::kJson) {
    json brokers = json::array();
    for (const v1::Broker& b : cluster.brokers()) {
      brokers.push_back({{"id", b.id()},
                         {"address", b.address()},
                         {"rack", b.rack()},
                         {"alive", b.alive()},
                         {"draining", b.draining()}});
    }
    return Dump(json{{"cluster_id", cluster.cluster_id()},
                     {"controller_id", cluster.controller_id()},
                     {"brokers", brokers},
                     {"metadata_voters", std::vector<int64_t>(cluster.metadata_voters().begin(),
                                                              cluster.metadata_voters().end())},
                     {"metadata_term", cluster.metadata_term()},
                     {"topic_count", cluster.topic_count()},
                     {"partition_count", cluster.partition_count()},
                     {"under_replicated_partitions", cluster.under_replicated_partitions()},
                     {"leaderless_partitions", cluster.leaderless_partitions()}});
  }
  std::ostringstream out;
  out << "cluster " << cluster.cluster_id() << "  controller " << cluster.controller_id()
      << "  metadata term " << cluster.metadata_term() << "  voters "
      << JoinIds(cluster.metadata_voters()) << "\n";
  for (const v1::Broker& b : cluster.brokers()) {
    out << "  broker " << b.id() << "  " << b.address() << "  rack "
        << (b.rack().empty() ? "-" : b.rack()) << "  " << (b.alive() ? "alive" : "DOWN")
        << (b.draining() ? "  draining" : "") << "\n";
  }
  out << "topics " << cluster.topic_count() << "  partitions " << cluster.partition_count()
      << "  under-replicated " << cluster.under_replicated_partitions() << "  leaderless "
      << cluster.leaderless_partitions() << "\n";
  return out.str();
}

std::string FormatRecord(const client::ConsumedRecord& record, Format format) {
  if (format == Format::kJson) {
    const int64_t timestamp = record.record.timestamp_ms() != 0 ? record.record.timestamp_ms()
                                                                : record.batch_max_timestamp_ms;
    return Dump(json{{"offset", record.offset},
                     {"key", record.record.key()},
                     {"value", record.record.value()},
                     {"timestamp", timestamp}});
  }
  return record.record.value() + "\n";
}

std::string FormatProduceAck(int64_t line, int32_t partition, int64_t offset) {
  return Dump(json{{"line", line}, {"partition", partition}, {"offset", offset}});
}

std::string FormatProduceSummary(const ProduceSummary& summary, Format format) {
  if (format == Format::kJson) {
    json j = {{"topic", summary.topic}, {"records", summary.records}, {"failed", summary.failed}};
    if (!summary.first_error.empty()) j["error"] = summary.first_error;
    return Dump(j);
  }
  std::string out = "produced " + std::to_string(summary.records - summary.failed) + " of " +
                    std::to_string(summary.records) + " records to " + summary.topic + "\n";
  if (!summary.first_error.empty()) out += "first error: " + summary.first_error + "\n";
  return out;
}

std::string FormatBench(const BenchReport& r, Format format) {
  const double records_per_s = r.seconds > 0 ? r.acked / r.seconds : 0;
  const double mb_per_s = records_per_s * r.record_size / (1024.0 * 1024.0);
  if (format == Format::kJson) {
    json j = {{"topic", r.topic},
              {"producers", r.producers},
              {"partitions", r.partitions},
              {"record_size", r.record_size},
              {"acks", r.acks},
              {"window", r.window},
              {"seconds", r.seconds},
              {"sent", r.sent},
              {"acked", r.acked},
              {"failed", r.failed},
              {"consumed", r.consumed},
              {"verified", r.verified},
              {"records_per_s", records_per_s},
              {"mb_per_s", mb_per_s},
              {"latency_us",
               {{"p50", r.p50_us}, {"p99", r.p99_us}, {"p99.9", r.p999_us}, {"max", r.max_us}}}};
    if (!r.first_error.empty()) j["error"] = r.first_error;
    return Dump(j);
  }
  char line[512];
  std::string out;
  std::snprintf(line, sizeof line,
                "bench %s: %d producer(s), %d partition(s), %d-byte records, acks=%s, "
                "window=%d, %.1f s\n",
                r.topic.c_str(), r.producers, r.partitions, r.record_size, r.acks.c_str(), r.window,
                r.seconds);
  out += line;
  std::snprintf(line, sizeof line,
                "  %lld sent, %lld acked, %lld failed; %.0f records/s, %.2f MB/s\n",
                static_cast<long long>(r.sent), static_cast<long long>(r.acked),
                static_cast<long long>(r.failed), records_per_s, mb_per_s);
  out += line;
  std::snprintf(line, sizeof line,
                "  produce latency ms: p50 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
                r.p50_us / 1000.0, r.p99_us / 1000.0, r.p999_us / 1000.0, r.max_us / 1000.0);
  out += line;
  std::snprintf(line, sizeof line, "  consumed %lld back: %s\n", static_cast<long long>(r.consumed),
                r.verified ? "verified" : "MISMATCH");
  out += line;
  if (!r.first_error.empty()) out += "  first error: " + r.first_error + "\n";
  return out;
}

}  // namespace skiff::cli

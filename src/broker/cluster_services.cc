// MetadataService (answered from the local metadata view) and AdminService (changes proposed
// to the metadata group through its leader), plus the inter-broker BrokerControl service.
#include <glog/logging.h>

#include <chrono>
#include <thread>

#include "broker/broker.h"
#include "broker/placement.h"
#include "broker/services.h"
#include "broker/status_to_grpc.h"
#include "broker/validation.h"
#include "skiff/internal/control.grpc.pb.h"
#include "skiff/v1/admin.grpc.pb.h"
#include "skiff/v1/groups.grpc.pb.h"
#include "skiff/v1/metadata.grpc.pb.h"

namespace skiff::broker {
namespace {

using Clock = std::chrono::steady_clock;
constexpr std::chrono::milliseconds kAdminTimeout{10000};

void FillBroker(const BrokerRecord& b, v1::Broker* out) {
  out->set_id(b.id);
  out->set_address(b.client_address);
  out->set_rack(b.rack);
  out->set_alive(b.alive);
}

void FillTopic(Broker* broker, const TopicRecord& t, v1::TopicMetadata* out) {
  out->set_name(t.name);
  out->set_id(std::to_string(t.id.value()));
  for (const PartitionRecord& p : t.partitions) {
    auto* pm = out->add_partitions();
    pm->set_partition(p.partition);
    uint64_t term = 0;
    pm->set_leader(broker->PartitionLeader(p, &term));
    pm->set_leader_epoch(static_cast<int64_t>(term));
    for (int64_t r : p.replicas) pm->add_replicas(r);
    // The leader knows who keeps up; other brokers answer with what it last reported.
    for (int64_t r : broker->PartitionInSync(p)) pm->add_in_sync(r);
  }
}

// Under-replicated: a replica's broker is not alive (every broker knows this), or fewer
// replicas are in sync with the leader than there are replicas.
bool IsUnderReplicated(const MetadataState& view, const PartitionRecord& p, Broker* broker) {
  for (int64_t r : p.replicas) {
    const BrokerRecord* b = view.broker(r);
    if (b == nullptr || !b->alive) return true;
  }
  const size_t in_sync = broker->PartitionInSync(p).size();
  return in_sync > 0 && in_sync < p.replicas.size();
}

class MetadataServiceImpl final : public v1::MetadataService::Service {
 public:
  explicit MetadataServiceImpl(Broker* broker) : broker_(broker) {}

  grpc::Status Metadata(grpc::ServerContext*, const v1::MetadataRequest* request,
                        v1::MetadataResponse* response) override {
    MetadataView view = broker_->metadata();
    response->set_controller_id(broker_->metadata_leader());
    for (const BrokerRecord& b : view->brokers()) FillBroker(b, response->add_brokers());
    if (request->topics_size() == 0) {
      for (const TopicRecord* t : view->topics()) FillTopic(broker_, *t, response->add_topics());
    } else {
      for (const std::string& name : request->topics()) {
        if (const TopicRecord* t = view->topic(name)) {
          FillTopic(broker_, *t, response->add_topics());
        } else {
          response->add_unknown_topics(name);
        }
      }
    }
    return grpc::Status::OK;
  }

 private:
  Broker* broker_;
};

class AdminServiceImpl final : public v1::AdminService::Service {
 public:
  explicit AdminServiceImpl(Broker* broker) : broker_(broker) {}

  grpc::Status CreateTopic(grpc::ServerContext*, const v1::CreateTopicRequest* request,
                           v1::CreateTopicResponse* response) override {
    if (auto s = ValidateCreateTopic(*request); !s.ok()) return ToGrpcStatus(s);
    internal::MetadataCommand command;
    auto* create = command.mutable_create_topic();
    create->set_name(request->name());
    *create->mutable_config() = request->config();
    create->set_partitions(request->partitions());
    create->set_replication_factor(request->replication_factor());
    for (const auto& list : request->replica_assignment()) *create->add_assignment() = list;
    if (request->validate_only()) {
      MetadataView view = broker_->metadata();
      if (view->topic(request->name())) {
        return ToGrpcStatus(AlreadyExistsError("topic '" + request->name() + "' exists"));
      }
      v1::TopicMetadata* topic = response->mutable_topic();
      topic->set_name(request->name());
      std::vector<std::vector<int64_t>> placement;
      if (request->replica_assignment_size() > 0) {
        for (const auto& list : request->replica_assignment()) {
          placement.emplace_back(list.brokers().begin(), list.brokers().end());
        }
      } else {
        auto placed = PlaceReplicas(view->LoadOfLiveBrokers(), request->partitions(),
                                    request->replication_factor());
        if (!placed.ok()) return ToGrpcStatus(placed.status());
        placement = std::move(*placed);
      }
      for (size_t i = 0; i < placement.size(); ++i) {
        auto* p = topic->add_partitions();
        p->set_partition(static_cast<int32_t>(i));
        p->set_leader(-1);
        for (int64_t b : placement[i]) p->add_replicas(b);
      }
      return grpc::Status::OK;
    }
    auto result = broker_->ProposeMetadata(std::move(command), kAdminTimeout);
    if (!result.ok()) return ToGrpcStatus(result.status());
    // The command applied on the leader; wait (bounded) until this broker's copy has it too,
    // so that what we answer agrees with what a Metadata call here returns next.
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (true) {
      MetadataView view = broker_->metadata();
      if (const TopicRecord* t = view->topic(request->name())) {
        FillTopic(broker_, *t, response->mutable_topic());
        return grpc::Status::OK;
      }
      if (Clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    response->mutable_topic()->set_name(request->name());
    return grpc::Status::OK;
  }

  grpc::Status DeleteTopic(grpc::ServerContext*, const v1::DeleteTopicRequest* request,
                           v1::DeleteTopicResponse*) override {
    if (auto s = ValidateTopicName(request->name()); !s.ok()) return ToGrpcStatus(s);
    internal::MetadataCommand command;
    command.mutable_delete_topic()->set_name(request->name());
    return ToGrpcStatus(broker_->ProposeMetadata(std::move(command), kAdminTimeout).status());
  }

  grpc::Status DescribeTopic(grpc::ServerContext*, const v1::DescribeTopicRequest* request,
                             v1::DescribeTopicResponse* response) override {
    MetadataView view = broker_->metadata();
    const TopicRecord* t = view->topic(request->name());
    if (t == nullptr) {
      return ToGrpcStatus(NotFoundError("unknown topic '" + request->name() + "'"));
    }
    FillTopic(broker_, *t, response->mutable_topic());
    const int32_t rf =
        t->partitions.empty() ? 1 : static_cast<int32_t>(t->partitions[0].replicas.size());
    *response->mutable_config() = EffectiveTopicConfig(t->config, rf);
    return grpc::Status::OK;
  }

  grpc::Status ListTopics(grpc::ServerContext*, const v1::ListTopicsRequest*,
                          v1::ListTopicsResponse* response) override {
    MetadataView view = broker_->metadata();
    for (const TopicRecord* t : view->topics()) {
      auto* s = response->add_topics();
      s->set_name(t->name);
      s->set_partitions(static_cast<int32_t>(t->partitions.size()));
      s->set_replication_factor(
          t->partitions.empty() ? 0 : static_cast<int32_t>(t->partitions[0].replicas.size()));
    }
    return grpc::Status::OK;
  }

  grpc::Status AlterTopicConfig(grpc::ServerContext*, const v1::AlterTopicConfigRequest* request,
                                v1::AlterTopicConfigResponse* response) override {
    if (auto s = ValidateTopicName(request->name()); !s.ok()) return ToGrpcStatus(s);
    if (auto s = ValidateTopicConfig(request->config()); !s.ok()) return ToGrpcStatus(s);
    internal::MetadataCommand command;
    command.mutable_alter_topic_config()->set_name(request->name());
    *command.mutable_alter_topic_config()->mutable_config() = request->config();
    auto result = broker_->ProposeMetadata(std::move(command), kAdminTimeout);
    if (!result.ok()) return ToGrpcStatus(result.status());
    MetadataView view = broker_->metadata();
    if (const TopicRecord* t = view->topic(request->name())) {
      const int32_t rf =
          t->partitions.empty() ? 1 : static_cast<int32_t>(t->partitions[0].replicas.size());
      *response->mutable_config() = EffectiveTopicConfig(t->config, rf);
    }
    return grpc::Status::OK;
  }

  grpc::Status DescribeCluster(grpc::ServerContext*, const v1::DescribeClusterRequest*,
                               v1::DescribeClusterResponse* response) override {
    MetadataView view = broker_->metadata();
    response->set_controller_id(broker_->metadata_leader());
    response->set_metadata_term(static_cast<int64_t>(broker_->metadata_term()));
    for (const BrokerRecord& b : view->brokers()) FillBroker(b, response->add_brokers());
    for (const auto& v : broker_->options().metadata_voters) {
      response->add_metadata_voters(v.broker_id);
    }
    int32_t partitions = 0, leaderless = 0, under_replicated = 0;
    for (const TopicRecord* t : view->topics()) {
      for (const PartitionRecord& p : t->partitions) {
        ++partitions;
        if (broker_->PartitionLeader(p) < 0) ++leaderless;
        if (IsUnderReplicated(*view, p, broker_)) ++under_replicated;
      }
    }
    response->set_topic_count(static_cast<int32_t>(view->topics().size()));
    response->set_partition_count(partitions);
    // Only partitions with a replica here are known; the count is this broker's view.
    response->set_leaderless_partitions(leaderless);
    response->set_under_replicated_partitions(under_replicated);
    return grpc::Status::OK;
  }

  grpc::Status InitProducerId(grpc::ServerContext*, const v1::InitProducerIdRequest* request,
                              v1::InitProducerIdResponse* response) override {
    internal::MetadataCommand command;
    command.mutable_allocate_producer_id()->set_producer_name(request->producer_name());
    auto result = broker_->ProposeMetadata(std::move(command), kAdminTimeout);
    if (!result.ok()) return ToGrpcStatus(result.status());
    response->set_producer_id(result->producer_id());
    response->set_producer_epoch(result->producer_epoch());
    return grpc::Status::OK;
  }

  // Runs on the partition's leader; any other broker forwards the call there.
  grpc::Status TransferLeadership(grpc::ServerContext* context,
                                  const v1::TransferLeadershipRequest* request,
                                  v1::TransferLeadershipResponse* response) override {
    if (auto s = ValidateTopicName(request->topic()); !s.ok()) return ToGrpcStatus(s);
    int64_t leader = -1;
    auto moved = broker_->TransferPartitionLeadership(
        request->topic(), request->partition(), request->target_broker(), kAdminTimeout, &leader);
    if (moved.ok()) {
      response->set_leader(*moved);
      return grpc::Status::OK;
    }
    if (moved.status().code() != StatusCode::kAborted) return ToGrpcStatus(moved.status());
    const std::string address = leader > 0 ? broker_->ClientAddressOf(leader) : "";
    // Forwarded once at most: two brokers with different views must not bounce it around.
    const bool forwarded = context->client_metadata().count("skiff-forwarded") > 0;
    if (address.empty() || leader == broker_->options().broker_id || forwarded) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          "the partition's leader is not known here right now; retry");
    }
    auto channel = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
    grpc::ClientContext ctx;
    ctx.AddMetadata("skiff-forwarded", "1");
    ctx.set_deadline(std::chrono::system_clock::now() + kAdminTimeout);
    return v1::AdminService::NewStub(channel)->TransferLeadership(&ctx, *request, response);
  }

  // AddPartitions, ReassignPartition and DecommissionBroker are not built yet: the generated
  // base class answers UNIMPLEMENTED.

 private:
  Broker* broker_;
};

class ControlServiceImpl final : public internal::BrokerControl::Service {
 public:
  explicit ControlServiceImpl(Broker* broker) : broker_(broker) {}

  grpc::Status ProposeMetadata(grpc::ServerContext*,
                               const internal::ProposeMetadataRequest* request,
                               internal::ProposeMetadataResponse* response) override {
    auto result = broker_->ProposeMetadataLocally(request->command(), kAdminTimeout);
    if (result.ok()) {
      *response->mutable_result() = std::move(*result);
      return grpc::Status::OK;
    }
    response->set_code(static_cast<int32_t>(result.status().code()));
    response->set_message(result.status().message());
    response->set_leader(broker_->metadata_leader());
    return grpc::Status::OK;
  }

 private:
  Broker* broker_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeMetadataService(Broker* broker) {
  return std::make_unique<MetadataServiceImpl>(broker);
}
std::unique_ptr<grpc::Service> MakeAdminService(Broker* broker) {
  return std::make_unique<AdminServiceImpl>(broker);
}
std::unique_ptr<grpc::Service> MakeControlService(Broker* broker) {
  return std::make_unique<ControlServiceImpl>(broker);
}

std::vector<std::unique_ptr<grpc::Service>> MakeClientServices(Broker* broker) {
  std::vector<std::unique_ptr<grpc::Service>> services;
  services.push_back(MakeProduceService(broker));
  services.push_back(MakeFetchService(broker));
  services.push_back(MakeMetadataService(broker));
  services.push_back(MakeAdminService(broker));
  // Consumer groups are not built yet: every GroupService method answers UNIMPLEMENTED.
  services.push_back(std::make_unique<v1::GroupService::Service>());
  return services;
}

}  // namespace skiff::broker

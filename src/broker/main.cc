// skiffd: the Skiff broker process.
//
// Status (see README): the broker validates its configuration and data directory, and serves
// the public gRPC API and gRPC health checking. The Raft host, the metadata group and
// replicated Produce/Fetch are not built yet, so every API method answers UNIMPLEMENTED and
// the health service reports the API services NOT_SERVING. The process itself is SERVING.
#include <gflags/gflags.h>
#include <glog/logging.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <csignal>
#include <cstdio>
#include <memory>
#include <thread>

#include "broker/broker_flags.h"
#include "skiff/v1/admin.grpc.pb.h"
#include "skiff/v1/fetch.grpc.pb.h"
#include "skiff/v1/groups.grpc.pb.h"
#include "skiff/v1/metadata.grpc.pb.h"
#include "skiff/v1/produce.grpc.pb.h"

DEFINE_int64(broker_id, 0, "This broker's id (>= 1), unique in the cluster");
DEFINE_string(listen, "127.0.0.1:9092", "host:port for client gRPC traffic");
DEFINE_string(raft_listen, "127.0.0.1:9192", "host:port for inter-broker Raft traffic");
DEFINE_string(data_dir, "", "Directory for this broker's data (created if missing)");
DEFINE_string(rack, "", "Rack (or zone) of this broker, for rack-aware replica placement");
DEFINE_string(metadata_voters, "",
              "Initial metadata group voters: id@raft_host:port,... (empty: this broker alone)");

namespace {

std::atomic<bool> g_stop{false};

void HandleSignal(int) { g_stop.store(true); }

int Fail(const skiff::Status& status) {
  std::fprintf(stderr, "skiffd: %s\n", status.ToString().c_str());
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  gflags::SetUsageMessage("skiffd --broker_id=N --data_dir=DIR [--listen=host:port] ...");
  gflags::ParseCommandLineFlags(&argc, &argv, true);
  google::InitGoogleLogging(argv[0]);
  FLAGS_logtostderr = true;

  skiff::broker::BrokerOptions options;
  options.broker_id = FLAGS_broker_id;
  options.client_address = FLAGS_listen;
  options.raft_address = FLAGS_raft_listen;
  options.data_dir = FLAGS_data_dir;
  options.rack = FLAGS_rack;
  if (!FLAGS_metadata_voters.empty()) {
    auto voters = skiff::broker::ParseMetadataVoters(FLAGS_metadata_voters);
    if (!voters.ok()) return Fail(voters.status());
    options.metadata_voters = *voters;
  } else {
    options.metadata_voters = {{options.broker_id, options.raft_address}};
  }
  if (auto s = skiff::broker::ValidateBrokerOptions(options); !s.ok()) return Fail(s);
  if (auto s = skiff::broker::PrepareDataDir(options.data_dir); !s.ok()) return Fail(s);

  // Generated base services answer UNIMPLEMENTED for every method until the broker serves it.
  skiff::v1::ProduceService::Service produce;
  skiff::v1::FetchService::Service fetch;
  skiff::v1::MetadataService::Service metadata;
  skiff::v1::AdminService::Service admin;
  skiff::v1::GroupService::Service groups;

  grpc::EnableDefaultHealthCheckService(true);
  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(options.client_address, grpc::InsecureServerCredentials(), &bound_port);
  builder.RegisterService(&produce);
  builder.RegisterService(&fetch);
  builder.RegisterService(&metadata);
  builder.RegisterService(&admin);
  builder.RegisterService(&groups);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || bound_port == 0) {
    return Fail(skiff::UnavailableError("cannot listen on " + options.client_address));
  }
  if (auto* health = server->GetHealthCheckService()) {
    for (const char* service :
         {"skiff.v1.ProduceService", "skiff.v1.FetchService", "skiff.v1.MetadataService",
          "skiff.v1.AdminService", "skiff.v1.GroupService"}) {
      health->SetServingStatus(service, false);
    }
  }
  LOG(INFO) << "skiffd broker " << options.broker_id << " listening on " << options.client_address
            << " (API not implemented yet: UNIMPLEMENTED)";

  std::signal(SIGTERM, HandleSignal);
  std::signal(SIGINT, HandleSignal);
  while (!g_stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  LOG(INFO) << "skiffd broker " << options.broker_id << " stopping";
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
  return 0;
}

// The gRPC services a broker serves, each a thin layer over Broker: validate the request,
// route it to the partition or the metadata group, translate the outcome into the documented
// status codes and per-partition error codes. A handler never trusts what a client sent.
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <vector>

namespace skiff::broker {

class Broker;

// Produce, Fetch, Metadata and Admin, for the client listener.
std::vector<std::unique_ptr<grpc::Service>> MakeClientServices(Broker* broker);
// BrokerControl, for the inter-broker listener.
std::unique_ptr<grpc::Service> MakeControlService(Broker* broker);

// Each client service, for MakeClientServices.
std::unique_ptr<grpc::Service> MakeProduceService(Broker* broker);
std::unique_ptr<grpc::Service> MakeFetchService(Broker* broker);
std::unique_ptr<grpc::Service> MakeMetadataService(Broker* broker);
std::unique_ptr<grpc::Service> MakeAdminService(Broker* broker);

}  // namespace skiff::broker

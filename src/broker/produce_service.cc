// ProduceService: validates each partition's batch, hands it to the partition's worker and
// waits for the outcome the requested acks level asks for.
#include <glog/logging.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "broker/broker.h"
#include "broker/services.h"
#include "broker/status_to_grpc.h"
#include "broker/validation.h"
#include "common/record_batch.h"
#include "common/thread_name.h"
#include "skiff/v1/produce.grpc.pb.h"

namespace skiff::broker {
namespace {

using Clock = std::chrono::steady_clock;
constexpr int32_t kDefaultProduceTimeoutMs = 30000;

// Collects the outcomes of one request's batches, which arrive on worker threads.
class Outcomes {
 public:
  explicit Outcomes(size_t n) : state_(std::make_shared<State>()) {
    state_->outcomes.resize(n);
    state_->remaining = n;
  }
  ProduceCallback Slot(size_t i) {
    return [state = state_, i](const ProduceOutcome& o) {
      std::lock_guard lock(state->mu);
      if (state->outcomes[i]) return;
      state->outcomes[i] = o;
      if (--state->remaining == 0) state->cv.notify_all();
    };
  }
  // Fills `slot i` immediately (a batch rejected before reaching a worker).
  void Set(size_t i, ProduceOutcome o) { Slot(i)(o); }
  std::vector<std::optional<ProduceOutcome>> Wait(Clock::time_point deadline) {
    std::unique_lock lock(state_->mu);
    state_->cv.wait_until(lock, deadline, [&] { return state_->remaining == 0; });
    return state_->outcomes;
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::optional<ProduceOutcome>> outcomes;
    size_t remaining = 0;
  };
  std::shared_ptr<State> state_;
};

ProduceOutcome Rejected(v1::ErrorCode code, std::string message, int64_t leader = -1) {
  ProduceOutcome o;
  o.error = code;
  o.message = std::move(message);
  o.leader_hint = leader;
  return o;
}

class ProduceServiceImpl final : public v1::ProduceService::Service {
 public:
  explicit ProduceServiceImpl(Broker* broker) : broker_(broker) {}

  grpc::Status Produce(grpc::ServerContext*, const v1::ProduceRequest* request,
                       v1::ProduceResponse* response) override {
    return Handle(*request, response);
  }

  // Pipelined: requests are dispatched as they arrive (many in flight) and answered in arrival
  // order, so batches of one partition come back in send order. At most kMaxStreamInFlight
  // requests wait at a time; beyond that the stream stops reading (flow control).
  grpc::Status ProduceStream(
      grpc::ServerContext* context,
      grpc::ServerReaderWriter<v1::ProduceResponse, v1::ProduceRequest>* stream) override {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<std::unique_ptr<InFlight>> queue;  // guarded by mu
    bool reading_done = false;                    // guarded by mu
    bool writer_done = false;                     // guarded by mu: the client is gone
    grpc::Status ending = grpc::Status::OK;       // guarded by mu
    std::thread writer([&] {
      SetThreadName("produce-acks");
      while (true) {
        std::unique_ptr<InFlight> next;
        {
          std::unique_lock lock(mu);
          cv.wait(lock, [&] { return !queue.empty() || reading_done; });
          if (queue.empty()) return;
          next = std::move(queue.front());
          queue.pop_front();
          cv.notify_all();
        }
        v1::ProduceResponse response;
        Complete(*next, &response);
        if (!stream->Write(response)) {
          context->TryCancel();
          // Wake a reader waiting for room in a queue nobody will drain any more.
          std::lock_guard lock(mu);
          writer_done = true;
          cv.notify_all();
          return;
        }
      }
    });
    v1::ProduceRequest request;
    while (!context->IsCancelled() && stream->Read(&request)) {
      if (auto s = ValidateProduceRequest(request); !s.ok()) {
        std::lock_guard lock(mu);
        ending = ToGrpcStatus(s);
        break;
      }
      auto in_flight = Start(request);
      std::unique_lock lock(mu);
      cv.wait(lock, [&] {
        return queue.size() < kMaxStreamInFlight || writer_done || context->IsCancelled();
      });
      if (writer_done) break;
      queue.push_back(std::move(in_flight));
      cv.notify_all();
    }
    {
      std::lock_guard lock(mu);
      reading_done = true;
      cv.notify_all();
    }
    writer.join();
    return ending;
  }

 private:
  static constexpr size_t kMaxStreamInFlight = 256;

  // One request between dispatch and answer.
  struct InFlight {
    v1::ProduceRequest request;
    Outcomes outcomes;
    Clock::time_point deadline;
    int32_t timeout_ms = 0;
  };

  grpc::Status Handle(const v1::ProduceRequest& request, v1::ProduceResponse* response) {
    if (auto s = ValidateProduceRequest(request); !s.ok()) return ToGrpcStatus(s);
    auto in_flight = Start(request);
    Complete(*in_flight, response);
    return grpc::Status::OK;
  }

  std::unique_ptr<InFlight> Start(const v1::ProduceRequest& request) {
    const int32_t timeout_ms =
        request.timeout_ms() > 0 ? request.timeout_ms() : kDefaultProduceTimeoutMs;
    auto f = std::unique_ptr<InFlight>(
        new InFlight{request, Outcomes(request.batches_size()),
                     Clock::now() + std::chrono::milliseconds(timeout_ms), timeout_ms});
    for (int i = 0; i < request.batches_size(); ++i) {
      Dispatch(request.batches(i), request.acks(), i, &f->outcomes);
    }
    return f;
  }

  void Complete(InFlight& f, v1::ProduceResponse* response) {
    const v1::ProduceRequest& request = f.request;
    const int32_t timeout_ms = f.timeout_ms;
    const size_t n = request.batches_size();
    auto results = f.outcomes.Wait(f.deadline);
    response->set_request_id(request.request_id());
    for (size_t i = 0; i < n; ++i) {
      const auto& in = request.batches(i);
      auto* out = response->add_results();
      out->set_topic(in.topic());
      out->set_partition(in.partition());
      if (!results[i]) {
        out->set_error(v1::REQUEST_TIMED_OUT);
        out->set_error_message("not committed within " + std::to_string(timeout_ms) +
                               " ms; it may still commit (an idempotent retry is safe)");
        out->set_base_offset(-1);
        continue;
      }
      const ProduceOutcome& o = *results[i];
      out->set_error(o.error);
      out->set_error_message(o.message);
      out->set_base_offset(o.error == v1::ERROR_NONE ? o.base_offset : -1);
      out->set_log_start_offset(o.log_start_offset);
      out->set_log_append_time_ms(o.append_time_ms);
      if (o.error == v1::NOT_LEADER || o.error == v1::LEADER_NOT_AVAILABLE) {
        out->mutable_leader()->set_broker_id(o.leader_hint);
        if (o.leader_hint > 0) {
          out->mutable_leader()->set_address(broker_->ClientAddressOf(o.leader_hint));
        }
      }
    }
  }

  void Dispatch(const v1::PartitionBatch& in, v1::Acks acks, size_t i, Outcomes* outcomes) {
    auto ref = broker_->FindPartition(in.topic(), in.partition());
    if (!ref.ok()) {
      const bool topic_known = broker_->metadata()->topic(in.topic()) != nullptr;
      return outcomes->Set(i, Rejected(topic_known ? v1::UNKNOWN_PARTITION : v1::UNKNOWN_TOPIC,
                                       ref.status().message()));
    }
    if (!ref->replica) {
      return outcomes->Set(i, Rejected(v1::NOT_LEADER, "this broker holds no replica",
                                       broker_->PartitionLeader(*ref)));
    }
    v1::RecordBatch batch = in.batch();
    BatchLimits limits;
    limits.max_batch_bytes = ref->config.max_message_bytes();
    if (auto s = ValidateRecordBatchForAppend(batch, limits); !s.ok()) {
      return outcomes->Set(i, Rejected(ErrorCodeForBatchStatus(s), s.message()));
    }
    broker_->host().Run(ref->group, [replica = ref->replica, batch = std::move(batch), acks,
                                     done = outcomes->Slot(i)](GroupHandle* g) mutable {
      if (g == nullptr) return done(Rejected(v1::NOT_LEADER, "partition not hosted here"));
      replica->Produce(g, std::move(batch), acks, done);
    });
  }

  Broker* broker_;
};

}  // namespace

std::unique_ptr<grpc::Service> MakeProduceService(Broker* broker) {
  return std::make_unique<ProduceServiceImpl>(broker);
}

}  // namespace skiff::broker

#include "client/producer.h"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <chrono>

#include "client/errors.h"
#include "client/partitioner.h"
#include "common/assert.h"
#include "common/record_batch.h"
#include "skiff/v1/produce.grpc.pb.h"

namespace skiff::client {

struct Producer::PartitionState {
  explicit PartitionState(PipelineOptions options) : pipeline(options) {}
  PartitionPipeline pipeline;
  int64_t producer_id = -1;
  int32_t producer_epoch = 0;
  int64_t reset_retry_at_ms = 0;  // after a failed InitProducerId
};

struct Producer::BatchPayload {
  TopicPartition tp;
  v1::RecordBatch batch;              // producer fields are filled per attempt
  std::vector<QueuedRecord> records;  // values moved into `batch`; callbacks and numbers kept
};

struct Producer::Call {
  TopicPartition tp;
  uint64_t batch_id = 0;
  std::string address;
  std::unique_ptr<v1::ProduceService::Stub> stub;
  grpc::ClientContext ctx;
  v1::ProduceRequest request;
  v1::ProduceResponse response;
  grpc::Status status;
};

Result<std::unique_ptr<Producer>> Producer::Create(Client& client, ProducerOptions options) {
  if (options.max_in_flight < 1 || options.batch_bytes < 1 || options.linger_ms < 0 ||
      options.delivery_timeout_ms < 1 || options.request_timeout_ms < 1 ||
      options.request_timeout_ms > 300000) {
    return InvalidArgumentError(
        "producer options: max_in_flight, batch_bytes, delivery_timeout_ms must be >= 1, "
        "linger_ms >= 0, request_timeout_ms in 1..300000");
  }
  std::unique_ptr<Producer> producer(new Producer(client, std::move(options)));
  if (producer->options_.idempotent) {
    SKIFF_ASSIGN_OR_RETURN(v1::InitProducerIdResponse id,
                           client.InitProducerId(producer->options_.producer_name));
    producer->default_producer_id_ = id.producer_id();
    producer->default_producer_epoch_ = id.producer_epoch();
  }
  producer->sender_ = std::thread([p = producer.get()] { p->SenderLoop(); });
  return producer;
}

Producer::Producer(Client& client, ProducerOptions options)
    : client_(client),
      options_(std::move(options)),
      start_ms_(std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now().time_since_epoch())
                    .count()),
      accumulator_(options_.batch_bytes, options_.linger_ms) {}

Producer::~Producer() { Close(); }

int64_t Producer::NowMs() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
             .count() -
         start_ms_;
}

Status Producer::Send(const std::string& topic, int32_t partition, v1::Record record,
                      DeliveryCallback callback) {
  SKIFF_ASSIGN_OR_RETURN(int32_t count, client_.PartitionCount(topic));
  std::lock_guard lock(mu_);
  if (closing_) return FailedPreconditionError("producer is closed");
  if (partition < 0) {
    partition = ChoosePartition(record.key(), count, round_robin_);
  } else if (partition >= count) {
    return InvalidArgumentError("topic '" + topic + "' has " + std::to_string(count) +
                                " partitions; there is no partition " + std::to_string(partition));
  }
  const int64_t now = NowMs();
  QueuedRecord queued{std::move(record), std::move(callback), now, next_record_number_++};
  outstanding_.insert(queued.number);
  accumulator_.Append(TopicPartition{topic, partition}, std::move(queued), now);
  cv_.notify_all();
  return Status::Ok();
}

std::future<Result<RecordMetadata>> Producer::Send(const std::string& topic, int32_t partition,
                                                   v1::Record record) {
  auto promise = std::make_shared<std::promise<Result<RecordMetadata>>>();
  std::future<Result<RecordMetadata>> future = promise->get_future();
  Status status =
      Send(topic, partition, std::move(record),
           [promise](const Result<RecordMetadata>& result) { promise->set_value(result); });
  if (!status.ok()) promise->set_value(status);
  return future;
}

void Producer::Flush() {
  std::unique_lock lock(mu_);
  const uint64_t target = next_record_number_;
  flush_requested_ = true;
  cv_.notify_all();
  cv_.wait(lock, [&] { return outstanding_.empty() || *outstanding_.begin() >= target; });
}

void Producer::Close() {
  std::call_once(close_once_, [this] {
    {
      std::lock_guard lock(mu_);
      closing_ = true;
      cv_.notify_all();
    }
    if (sender_.joinable()) sender_.join();
  });
}

void Producer::CollectCompletions(PartitionState& state, std::vector<std::function<void()>>& out,
                                  std::vector<uint64_t>& numbers) {
  for (Completion& done : state.pipeline.TakeCompletions()) {
    auto node = batches_.extract(done.batch_id);
    SKIFF_ASSERT(!node.empty());
    BatchPayload& payload = *node.mapped();
    for (size_t i = 0; i < payload.records.size(); ++i) {
      QueuedRecord& record = payload.records[i];
      numbers.push_back(record.number);
      if (!record.callback) continue;
      Result<RecordMetadata> result =
          done.status.ok()
              ? Result<RecordMetadata>(RecordMetadata{
                    payload.tp.partition,
                    done.base_offset < 0 ? -1 : done.base_offset + static_cast<int64_t>(i)})
              : Result<RecordMetadata>(done.status);
      out.push_back([cb = std::move(record.callback), result = std::move(result)] { cb(result); });
    }
  }
}

void Producer::FinishRecords(const std::vector<uint64_t>& numbers) {
  if (numbers.empty()) return;
  std::lock_guard lock(mu_);
  for (uint64_t n : numbers) outstanding_.erase(outstanding_.find(n));
  cv_.notify_all();
}

void Producer::SenderLoop() {
  struct Outgoing {
    TopicPartition tp;
    uint64_t batch_id;
    v1::RecordBatch batch;
  };
  PipelineOptions pipeline_options;
  pipeline_options.max_in_flight = options_.max_in_flight;
  pipeline_options.idempotent = options_.idempotent;

  std::unique_lock lock(mu_);
  while (true) {
    int64_t now = NowMs();
    std::vector<SealedBatch> sealed = accumulator_.Drain(now, flush_requested_ || closing_);
    flush_requested_ = false;
    std::vector<std::function<void()>> callbacks;
    std::vector<uint64_t> finished;
    if (!sealed.empty()) {
      // Serializing and compressing is the expensive part; Send() must not wait for it.
      lock.unlock();
      std::vector<std::pair<SealedBatch, Result<v1::RecordBatch>>> built;
      for (SealedBatch& batch : sealed) {
        std::vector<v1::Record> records;
        records.reserve(batch.records.size());
        for (QueuedRecord& r : batch.records) records.push_back(std::move(r.record));
        Result<v1::RecordBatch> encoded = BuildRecordBatch(records, options_.compression);
        built.emplace_back(std::move(batch), std::move(encoded));
      }
      lock.lock();
      for (auto& [batch, encoded] : built) {
        if (!encoded.ok()) {
          for (QueuedRecord& r : batch.records) {
            finished.push_back(r.number);
            if (r.callback) {
              callbacks.push_back([cb = std::move(r.callback), s = encoded.status()] { cb(s); });
            }
          }
          continue;
        }
        auto& state = partitions_[batch.tp];
        if (!state) {
          state = std::make_unique<PartitionState>(pipeline_options);
          state->producer_id = default_producer_id_;
          state->producer_epoch = default_producer_epoch_;
        }
        const uint64_t id = next_batch_id_++;
        state->pipeline.Append(id, static_cast<int32_t>(batch.records.size()),
                               batch.created_ms + options_.delivery_timeout_ms);
        auto payload = std::make_unique<BatchPayload>();
        payload->tp = batch.tp;
        payload->batch = std::move(encoded).value();
        payload->records = std::move(batch.records);
        batches_[id] = std::move(payload);
      }
      now = NowMs();
    }

    std::vector<Outgoing> outgoing;
    std::vector<TopicPartition> resets;
    std::optional<int64_t> wake = accumulator_.NextDueMs();
    auto earliest = [&wake](std::optional<int64_t> t) {
      if (t) wake = wake ? std::min(*wake, *t) : *t;
    };
    for (auto& [tp, state] : partitions_) {
      PartitionPipeline& pipeline = state->pipeline;
      while (std::optional<SendTicket> ticket = pipeline.NextToSend(now)) {
        const BatchPayload& payload = *batches_.at(ticket->batch_id);
        v1::RecordBatch batch = payload.batch;
        batch.set_producer_id(state->producer_id);
        batch.set_producer_epoch(state->producer_epoch);
        batch.set_base_sequence(options_.idempotent ? ticket->base_sequence : 0);
        outgoing.push_back({tp, ticket->batch_id, std::move(batch)});
        ++calls_outstanding_;
      }
      // A reset waits until there is something to send again (Close need not wait for it).
      if (pipeline.needs_sequence_reset() && pipeline.in_flight() == 0 && pipeline.unacked() > 0) {
        if (now >= state->reset_retry_at_ms) {
          resets.push_back(tp);
        } else {
          earliest(state->reset_retry_at_ms);
        }
      }
      CollectCompletions(*state, callbacks, finished);
      earliest(pipeline.NextWakeupMs());
    }

    if (!outgoing.empty() || !resets.empty() || !callbacks.empty() || !finished.empty()) {
      lock.unlock();
      for (auto& callback : callbacks) callback();
      FinishRecords(finished);
      for (const TopicPartition& tp : resets) {
        // A fresh producer id lets the partition restart its sequences after a batch was given
        // up, without the broker seeing a gap (see partition_pipeline.h). Unnamed: asking with
        // our name would bump the epoch and fence this producer's other partitions.
        Result<v1::InitProducerIdResponse> id =
            client_.InitProducerId("", std::min<int64_t>(options_.request_timeout_ms, 5000));
        std::lock_guard relock(mu_);
        PartitionState& state = *partitions_.at(tp);
        if (id.ok()) {
          state.producer_id = id->producer_id();
          state.producer_epoch = id->producer_epoch();
          state.pipeline.ResetSequences();
        } else {
          state.reset_retry_at_ms = NowMs() + 1000;
        }
      }
      for (Outgoing& out : outgoing) Dispatch(out.tp, out.batch_id, std::move(out.batch));
      lock.lock();
      continue;
    }
    if (closing_ && outstanding_.empty() && calls_outstanding_ == 0) return;
    if (wake) {
      cv_.wait_for(lock, std::chrono::milliseconds(std::max<int64_t>(*wake - now, 1)));
    } else {
      cv_.wait(lock);
    }
  }
}

void Producer::Dispatch(const TopicPartition& tp, uint64_t batch_id, v1::RecordBatch batch) {
  auto call = std::make_unique<Call>();
  call->tp = tp;
  call->batch_id = batch_id;
  // The sender thread waits for this; keep it short so deadlines elsewhere stay responsive.
  Result<std::vector<std::string>> addresses = client_.PartitionAddresses(
      tp.topic, tp.partition, std::min<int64_t>(options_.request_timeout_ms, 5000));
  if (!addresses.ok()) {
    call->status = grpc::Status(grpc::StatusCode::UNAVAILABLE, addresses.status().ToString());
    OnProduceDone(call.release());
    return;
  }
  // With the leader unknown the candidates are its replicas; spread attempts over them.
  call->address = (*addresses)[batch_id % addresses->size()];
  call->request.set_acks(options_.acks);
  call->request.set_timeout_ms(static_cast<int32_t>(options_.request_timeout_ms));
  call->request.set_request_id(batch_id);
  v1::PartitionBatch* entry = call->request.add_batches();
  entry->set_topic(tp.topic);
  entry->set_partition(tp.partition);
  *entry->mutable_batch() = std::move(batch);
  // A little longer than the broker's own wait, so its REQUEST_TIMED_OUT normally comes first.
  call->ctx.set_deadline(std::chrono::system_clock::now() +
                         std::chrono::milliseconds(options_.request_timeout_ms + 5000));
  call->stub = v1::ProduceService::NewStub(client_.Channel(call->address));
  Call* raw = call.release();
  raw->stub->async()->Produce(&raw->ctx, &raw->request, &raw->response,
                              [this, raw](grpc::Status status) {
                                raw->status = std::move(status);
                                OnProduceDone(raw);
                              });
}

void Producer::OnProduceDone(Call* raw) {
  std::unique_ptr<Call> call(raw);
  std::vector<std::function<void()>> callbacks;
  std::vector<uint64_t> finished;
  {
    std::lock_guard lock(mu_);
    PartitionState& state = *partitions_.at(call->tp);
    PartitionPipeline& pipeline = state.pipeline;
    const int64_t now = NowMs();
    const std::string& address = call->address.empty() ? std::string("(none)") : call->address;
    if (!call->status.ok()) {
      const FailureKind kind = ClassifyGrpc(call->status.error_code());
      Status why = FromGrpc(call->status, address);
      if (kind == FailureKind::kFatal) {
        pipeline.OnFatal(call->batch_id, std::move(why));
      } else {
        if (kind == FailureKind::kRetryAfterMetadata) {
          client_.ForgetLeader(call->tp.topic, call->tp.partition);
        }
        pipeline.OnRetriable(call->batch_id, now, std::move(why));
      }
    } else if (call->response.results_size() != 1) {
      pipeline.OnFatal(call->batch_id, InternalError("broker " + address + " answered " +
                                                     std::to_string(call->response.results_size()) +
                                                     " results for one batch"));
    } else {
      const v1::PartitionProduceResult& result = call->response.results(0);
      if (result.error() == v1::ERROR_NONE) {
        pipeline.OnAcked(call->batch_id, result.base_offset());
      } else {
        Status why = FromErrorCode(result.error(), result.error_message(), address);
        const FailureKind kind = ClassifyErrorCode(result.error());
        if (kind == FailureKind::kFatal) {
          pipeline.OnFatal(call->batch_id, std::move(why));
        } else {
          if (kind == FailureKind::kRetryAfterMetadata) {
            if (result.has_leader() && result.leader().broker_id() >= 0 &&
                !result.leader().address().empty()) {
              client_.ApplyLeaderHint(call->tp.topic, call->tp.partition, result.leader());
            } else {
              client_.ForgetLeader(call->tp.topic, call->tp.partition);
            }
          }
          pipeline.OnRetriable(call->batch_id, now, std::move(why));
        }
      }
    }
    CollectCompletions(state, callbacks, finished);
  }
  call.reset();
  // User callbacks run before the records stop counting as outstanding, so that Flush() and
  // Close() return only after every callback has finished.
  for (auto& callback : callbacks) callback();
  std::lock_guard lock(mu_);
  for (uint64_t n : finished) outstanding_.erase(outstanding_.find(n));
  --calls_outstanding_;
  cv_.notify_all();
}

}  // namespace skiff::client

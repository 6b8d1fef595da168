// Producer: batches records per partition and sends them with pipelining, retries and (by
// default) idempotence, so that each partition's records are written in Send order, once.
//
// Lifecycle: Create() (asks the cluster for a producer id when idempotent), Send()* from any
// threads, Flush() to wait, Close() or the destructor to flush and stop. Every record's
// callback runs exactly once — with its offset, or with the error that made the producer give
// up (a fatal error, or delivery_timeout_ms passing) — on a producer or gRPC thread, never
// inside Send(). Callbacks may call Send() but must not call Flush()/Close().
//
// One background thread seals batches (on size or linger) and puts them on the wire with async
// gRPC, up to max_in_flight per partition; see partition_pipeline.h for the ordering rules.
//
// Thread-safety: all methods are thread-safe. The Client must outlive the Producer.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>

#include "client/client.h"
#include "client/partition_pipeline.h"
#include "client/record_accumulator.h"
#include "common/status.h"
#include "skiff/v1/produce.pb.h"
#include "skiff/v1/records.pb.h"

namespace skiff::client {

struct ProducerOptions {
  v1::Acks acks = v1::ACKS_ALL;
  int64_t linger_ms = 5;
  int64_t batch_bytes = 256 << 10;
  int max_in_flight = 5;  // per partition
  bool idempotent = true;
  v1::Compression compression = v1::COMPRESSION_NONE;
  int64_t delivery_timeout_ms = 120000;
  int64_t request_timeout_ms = 30000;  // one Produce attempt; also sent as the broker's wait
  // Passed to InitProducerId. Empty: a fresh producer id. A name gets the name's id with a
  // bumped epoch, which fences every older producer with that name — so two live producers
  // must not share one. (A partition that has to restart its sequences takes a fresh unnamed
  // id; see partition_pipeline.h.)
  std::string producer_name;
};

class Producer {
 public:
  static Result<std::unique_ptr<Producer>> Create(Client& client, ProducerOptions options);
  ~Producer();
  Producer(const Producer&) = delete;
  Producer& operator=(const Producer&) = delete;

  // Queues a record for `topic`; partition -1 picks one from the key (see partitioner.h).
  // Returns an error without calling `callback` only when the record is refused up front
  // (producer closed, unknown topic, partition out of range).
  Status Send(const std::string& topic, int32_t partition, v1::Record record,
              DeliveryCallback callback);
  // Same, with the outcome as a future.
  std::future<Result<RecordMetadata>> Send(const std::string& topic, int32_t partition,
                                           v1::Record record);

  // Waits until every record sent before the call has its outcome.
  void Flush();
  // Flushes, then stops the background thread. Later Sends fail. Idempotent.
  void Close();

 private:
  Producer(Client& client, ProducerOptions options);

  struct PartitionState;
  struct BatchPayload;
  struct Call;

  void SenderLoop();
  // Puts one ticket's batch on the wire (no lock held).
  void Dispatch(const TopicPartition& tp, uint64_t batch_id, v1::RecordBatch batch);
  void OnProduceDone(Call* call);
  // Takes the pipeline's completions and turns them into record callbacks to run.
  // Each callback reports one record; `numbers` collects the records' numbers for outstanding_.
  void CollectCompletions(PartitionState& state, std::vector<std::function<void()>>& out,
                          std::vector<uint64_t>& numbers);
  // After the callbacks ran: forget the records, wake Flush/Close.
  void FinishRecords(const std::vector<uint64_t>& numbers);
  int64_t NowMs() const;

  Client& client_;
  const ProducerOptions options_;
  const int64_t start_ms_;

  // Everything from here to default_producer_* is guarded by mu_. It is never held while
  // building batches, making RPCs or running user callbacks.
  std::mutex mu_;
  std::condition_variable cv_;  // wakes the sender, and Flush/Close waiters
  RecordAccumulator accumulator_;
  std::map<TopicPartition, std::unique_ptr<PartitionState>> partitions_;
  std::map<uint64_t, std::unique_ptr<BatchPayload>> batches_;
  uint64_t next_batch_id_ = 1;
  uint64_t round_robin_ = 0;
  uint64_t next_record_number_ = 0;
  // Numbers of the records whose callback has not finished yet.
  std::multiset<uint64_t> outstanding_;
  int calls_outstanding_ = 0;  // async gRPC calls whose completion has not finished
  bool flush_requested_ = false;
  bool closing_ = false;
  int64_t default_producer_id_ = -1;
  int32_t default_producer_epoch_ = 0;  // written once in Create(), before the sender starts
  std::once_flag close_once_;
  std::thread sender_;
};

}  // namespace skiff::client

// Rack-aware replica placement for new partitions.
//
// The proposer of a CreateTopic computes the placement and puts it in the metadata command, so
// the metadata state machine only records it; this function need only be deterministic for a
// given input, not stable across versions.
//
// Pure and thread-safe.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/status.h"

namespace skiff::broker {

struct BrokerLoad {
  int64_t id = 0;
  std::string rack;      // empty: the broker declared none (it counts as its own rack)
  int32_t replicas = 0;  // replicas it holds now
  int32_t leaders = 0;   // preferred leaderships it holds now
};

// Replica lists (preferred leader first) for `partitions` new partitions of
// `replication_factor` replicas over `brokers` (the live, non-draining ones, with their current
// load; any order). Promises:
//   * each list has replication_factor distinct brokers;
//   * a partition's replicas are on min(replication_factor, number of racks) distinct racks;
//   * replicas go to the least-loaded eligible brokers, so without racks (or with racks of
//     equal size) and equal starting loads, replica counts differ by at most 1 afterwards;
//   * replica balance comes first; then each partition's preferred leader is chosen among its
//     replicas so that leaderships are as even as those replica sets allow (with equal starting
//     loads and one replication factor, leader counts differ by at most 1 too);
//   * the result depends only on the set of brokers, not their order.
// Errors: kInvalidArgument for partitions < 1, replication_factor < 1 or a repeated broker id;
// kFailedPrecondition (saying how many brokers there are) if replication_factor exceeds the
// number of brokers.
Result<std::vector<std::vector<int64_t>>> PlaceReplicas(std::vector<BrokerLoad> brokers,
                                                        int32_t partitions,
                                                        int32_t replication_factor);

}  // namespace skiff::broker

#include "broker/placement.h"

#include <algorithm>
#include <tuple>
#include <unordered_map>
#include <utility>

namespace skiff::broker {

namespace {

// Greedy leader choices can leave leadership lopsided when earlier topics had other replication
// factors. Which replica leads does not change replica counts, so leaderships are moved along
// chains (A leads p1 which also has B; B leads p2 which also has C: A -> B -> C) from a broker
// with the most leaderships to one with at least two fewer, until no such chain exists. Every
// move lowers the sum of squared leader counts, so the loop ends.
void BalanceLeaders(std::vector<BrokerLoad>& brokers,
                    std::vector<std::vector<int64_t>>& placement) {
  std::unordered_map<int64_t, size_t> index_of;
  for (size_t i = 0; i < brokers.size(); ++i) index_of[brokers[i].id] = i;
  const size_t n = brokers.size();
  // Bounded: each move lowers sum(leaders^2) by at least 2, which starts below this.
  int64_t moves_left = 1;
  for (const BrokerLoad& b : brokers) moves_left += int64_t{b.leaders} * b.leaders;
  while (moves_left-- > 0) {
    std::vector<std::vector<size_t>> led(n);  // new partitions each broker leads
    for (size_t p = 0; p < placement.size(); ++p) led[index_of[placement[p][0]]].push_back(p);
    std::vector<size_t> order(n);
    for (size_t i = 0; i < n; ++i) order[i] = i;
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return brokers[a].leaders > brokers[b].leaders; });
    bool moved = false;
    for (size_t source : order) {
      if (led[source].empty()) continue;
      // Breadth-first over "move one of u's leaderships to v"; via[v] = (u, partition).
      std::vector<std::pair<size_t, size_t>> via(n, {n, 0});
      std::vector<size_t> queue = {source};
      via[source] = {source, 0};
      size_t target = n;
      for (size_t head = 0; head < queue.size() && target == n; ++head) {
        const size_t u = queue[head];
        for (size_t p : led[u]) {
          for (int64_t id : placement[p]) {
            const size_t v = index_of[id];
            if (via[v].first != n) continue;
            via[v] = {u, p};
            if (brokers[v].leaders + 2 <= brokers[source].leaders) {
              target = v;
              break;
            }
            queue.push_back(v);
          }
          if (target != n) break;
        }
      }
      if (target == n) continue;
      for (size_t v = target; v != source; v = via[v].first) {
        std::vector<int64_t>& replicas = placement[via[v].second];
        std::iter_swap(replicas.begin(),
                       std::find(replicas.begin(), replicas.end(), brokers[v].id));
      }
      --brokers[source].leaders;
      ++brokers[target].leaders;
      moved = true;
      break;
    }
    if (!moved) return;
  }
}

}  // namespace

Result<std::vector<std::vector<int64_t>>> PlaceReplicas(std::vector<BrokerLoad> brokers,
                                                        int32_t partitions,
                                                        int32_t replication_factor) {
  if (partitions < 1) {
    return InvalidArgumentError("partitions must be at least 1, got " + std::to_string(partitions));
  }
  if (replication_factor < 1) {
    return InvalidArgumentError("replication factor must be at least 1, got " +
                                std::to_string(replication_factor));
  }
  std::sort(brokers.begin(), brokers.end(),
            [](const BrokerLoad& a, const BrokerLoad& b) { return a.id < b.id; });
  for (size_t i = 1; i < brokers.size(); ++i) {
    if (brokers[i].id == brokers[i - 1].id) {
      return InvalidArgumentError("broker " + std::to_string(brokers[i].id) + " is listed twice");
    }
  }
  if (static_cast<size_t>(replication_factor) > brokers.size()) {
    return FailedPreconditionError("replication factor " + std::to_string(replication_factor) +
                                   " exceeds the " + std::to_string(brokers.size()) +
                                   " available brokers");
  }

  // Racks as small integers; a broker without a rack is a rack of its own.
  std::vector<std::string> rack_names;
  std::vector<size_t> rack_of(brokers.size());
  for (size_t i = 0; i < brokers.size(); ++i) {
    if (brokers[i].rack.empty()) {
      rack_of[i] = rack_names.size();
      rack_names.emplace_back();
      continue;
    }
    auto it = std::find(rack_names.begin(), rack_names.end(), brokers[i].rack);
    rack_of[i] = static_cast<size_t>(it - rack_names.begin());
    if (it == rack_names.end()) rack_names.push_back(brokers[i].rack);
  }
  const size_t rack_count = rack_names.size();

  std::vector<std::vector<int64_t>> placement;
  placement.reserve(static_cast<size_t>(partitions));
  std::vector<bool> chosen(brokers.size());
  std::vector<bool> rack_used(rack_count);
  for (int32_t p = 0; p < partitions; ++p) {
    std::fill(chosen.begin(), chosen.end(), false);
    std::fill(rack_used.begin(), rack_used.end(), false);
    size_t racks_used = 0;
    std::vector<int64_t> replicas;
    for (int32_t r = 0; r < replication_factor; ++r) {
      const bool need_new_rack = racks_used < rack_count;
      // The leader goes to the least-loaded broker with the fewest leaderships; followers to the
      // least-loaded broker with the *most* leaderships, leaving the brokers short of
      // leaderships free to lead the next partitions. Ties go to the lowest id.
      auto key = [&](size_t i) {
        const int32_t leaders = r == 0 ? brokers[i].leaders : -brokers[i].leaders;
        return std::make_tuple(brokers[i].replicas, leaders, brokers[i].id);
      };
      size_t best = brokers.size();
      for (size_t i = 0; i < brokers.size(); ++i) {
        if (chosen[i] || (need_new_rack && rack_used[rack_of[i]])) continue;
        if (best == brokers.size() || key(i) < key(best)) best = i;
      }
      chosen[best] = true;
      if (!rack_used[rack_of[best]]) {
        rack_used[rack_of[best]] = true;
        ++racks_used;
      }
      ++brokers[best].replicas;
      if (r == 0) ++brokers[best].leaders;
      replicas.push_back(brokers[best].id);
    }
    placement.push_back(std::move(replicas));
  }
  BalanceLeaders(brokers, placement);
  return placement;
}

}  // namespace skiff::broker

#include "raft/quorum.h"

#include <algorithm>
#include <functional>

namespace skiff::raft::quorum {

size_t MajoritySize(size_t voters) { return voters == 0 ? 0 : voters / 2 + 1; }

Index CommittedIndex(std::vector<Index> matches) {
  if (matches.empty()) return 0;
  std::sort(matches.begin(), matches.end(), std::greater<Index>());
  return matches[MajoritySize(matches.size()) - 1];
}

Index MinorityCommittedIndex(std::vector<Index> matches) {
  if (matches.empty()) return 0;
  std::sort(matches.begin(), matches.end(), std::greater<Index>());
  return matches.size() == 1 ? matches[0] : matches[1];
}

VoteResult TallyVotes(const std::vector<NodeId>& voters, const std::map<NodeId, bool>& votes) {
  size_t granted = 0;
  size_t rejected = 0;
  for (NodeId v : voters) {
    auto it = votes.find(v);
    if (it == votes.end()) continue;
    (it->second ? granted : rejected)++;
  }
  const size_t q = MajoritySize(voters.size());
  if (q == 0) return VoteResult::kLost;
  if (granted >= q) return VoteResult::kWon;
  if (voters.size() - rejected < q) return VoteResult::kLost;
  return VoteResult::kPending;
}

}  // namespace skiff::raft::quorum

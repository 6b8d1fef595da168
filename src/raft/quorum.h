// Quorum arithmetic for a single (majority) configuration: the commit index a set of voters has
// reached and the outcome of a vote. Pure functions, table-tested in tests/raft/quorum_test.cc.
// Learners never appear here: callers pass voters only.
#pragma once

#include <cstddef>
#include <map>
#include <vector>

#include "raft/types.h"

namespace skiff::raft::quorum {

// Smallest number of voters that forms a majority of `voters` (0 for an empty set).
size_t MajoritySize(size_t voters);

// The largest index that at least a majority of the given per-voter match indexes have reached.
// `matches` holds one value per voter (0 for a voter with no known progress). Empty -> 0.
Index CommittedIndex(std::vector<Index> matches);

// Same, but with a deliberately broken rule (the `commit_on_minority` testing knob): the index
// reached by the leader and any single other voter.
Index MinorityCommittedIndex(std::vector<Index> matches);

enum class VoteResult { kPending, kLost, kWon };

// Tallies `votes` (voter -> granted) over `voters`. Votes from non-voters are ignored.
VoteResult TallyVotes(const std::vector<NodeId>& voters, const std::map<NodeId, bool>& votes);

}  // namespace skiff::raft::quorum

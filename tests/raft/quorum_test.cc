#include "raft/quorum.h"

#include <gtest/gtest.h>

namespace skiff::raft::quorum {
namespace {

TEST(QuorumTest, MajoritySize) {
  EXPECT_EQ(MajoritySize(0), 0u);
  EXPECT_EQ(MajoritySize(1), 1u);
  EXPECT_EQ(MajoritySize(2), 2u);
  EXPECT_EQ(MajoritySize(3), 2u);
  EXPECT_EQ(MajoritySize(4), 3u);
  EXPECT_EQ(MajoritySize(5), 3u);
}

TEST(QuorumTest, CommittedIndexTable) {
  struct Case {
    std::vector<Index> matches;
    Index want;
  };
  const std::vector<Case> cases = {
      {{}, 0},
      {{5}, 5},
      {{5, 3}, 3},
      {{5, 3, 1}, 3},
      {{1, 5, 3}, 3},
      {{2, 2, 2}, 2},
      {{0, 0, 7}, 0},
      {{9, 8, 7, 6}, 7},
      {{9, 0, 0, 6}, 0},
      {{10, 9, 1, 1, 1}, 1},
      {{10, 9, 8, 1, 1}, 8},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(CommittedIndex(c.matches), c.want) << ::testing::PrintToString(c.matches);
  }
}

TEST(QuorumTest, MinorityCommittedIndexIsBroken) {
  // Five voters, only leader (10) and one follower (9) have the entry: a real majority has 1.
  EXPECT_EQ(CommittedIndex({10, 9, 1, 1, 1}), 1u);
  EXPECT_EQ(MinorityCommittedIndex({10, 9, 1, 1, 1}), 9u);
  EXPECT_EQ(MinorityCommittedIndex({4}), 4u);
}

TEST(QuorumTest, TallyVotesTable) {
  struct Case {
    std::vector<NodeId> voters;
    std::map<NodeId, bool> votes;
    VoteResult want;
  };
  const std::vector<Case> cases = {
      {{}, {}, VoteResult::kLost},
      {{1}, {}, VoteResult::kPending},
      {{1}, {{1, true}}, VoteResult::kWon},
      {{1}, {{1, false}}, VoteResult::kLost},
      {{1, 2, 3}, {{1, true}}, VoteResult::kPending},
      {{1, 2, 3}, {{1, true}, {2, true}}, VoteResult::kWon},
      {{1, 2, 3}, {{1, true}, {2, false}}, VoteResult::kPending},
      {{1, 2, 3}, {{1, true}, {2, false}, {3, false}}, VoteResult::kLost},
      {{1, 2, 3, 4}, {{1, true}, {2, true}}, VoteResult::kPending},
      {{1, 2, 3, 4}, {{1, true}, {2, true}, {3, false}, {4, false}}, VoteResult::kLost},
      {{1, 2, 3, 4}, {{1, true}, {2, true}, {4, true}}, VoteResult::kWon},
      // Votes from non-voters (e.g. learners) never count.
      {{1, 2, 3}, {{1, true}, {7, true}, {8, true}}, VoteResult::kPending},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(TallyVotes(c.voters, c.votes), c.want) << ::testing::PrintToString(c.voters);
  }
}

}  // namespace
}  // namespace skiff::raft::quorum

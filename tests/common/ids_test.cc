#include "common/ids.h"

#include <gtest/gtest.h>

#include <type_traits>
#include <unordered_set>

namespace skiff {
namespace {

TEST(IdsTest, DistinctTypesDoNotConvert) {
  static_assert(!std::is_convertible_v<BrokerId, TopicId>);
  static_assert(!std::is_convertible_v<uint64_t, BrokerId>);
  static_assert(!std::is_convertible_v<int64_t, Offset>);
  EXPECT_LT(BrokerId(1), BrokerId(2));
  EXPECT_EQ(BrokerId(7).value(), 7u);
}

TEST(IdsTest, OffsetArithmetic) {
  Offset a(10);
  EXPECT_EQ((a + 5).value(), 15);
  EXPECT_EQ(Offset(15) - a, 5);
  EXPECT_LT(Offset(-1), Offset(0));
}

TEST(IdsTest, Hashable) {
  std::unordered_set<BrokerId> ids{BrokerId(1), BrokerId(2), BrokerId(1)};
  EXPECT_EQ(ids.size(), 2u);
}

}  // namespace
}  // namespace skiff

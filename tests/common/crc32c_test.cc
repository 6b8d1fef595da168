#include "common/crc32c.h"

#include <gtest/gtest.h>

#include <string>

namespace skiff {
namespace {

TEST(Crc32cTest, StandardCheckValue) { EXPECT_EQ(Crc32c("123456789"), 0xE3069283u); }

TEST(Crc32cTest, KnownVectorsFromRfc3720) {
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8A9136AAu);
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62A8AB43u);
}

TEST(Crc32cTest, ExtendEqualsWhole) {
  std::string a = "hello, ", b = "skiff";
  EXPECT_EQ(Crc32cExtend(Crc32c(a), b.data(), b.size()), Crc32c(a + b));
}

TEST(Crc32cTest, SingleBitFlipChangesChecksum) {
  std::string data(4096, 'x');
  uint32_t before = Crc32c(data);
  for (size_t byte : {size_t{0}, size_t{1000}, size_t{4095}}) {
    for (int bit = 0; bit < 8; ++bit) {
      std::string copy = data;
      copy[byte] = static_cast<char>(copy[byte] ^ (1 << bit));
      EXPECT_NE(Crc32c(copy), before) << byte << ":" << bit;
    }
  }
}

}  // namespace
}  // namespace skiff

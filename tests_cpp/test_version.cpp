#include "blocktrust/version.hpp"

#include <gtest/gtest.h>

#include <string>

TEST(Version, MatchesPyprojectFormat) {
  const std::string v = blocktrust::version();
  ASSERT_FALSE(v.empty());
  EXPECT_NE(v.find('.'), std::string::npos) << v;
}

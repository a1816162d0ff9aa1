#include <gtest/gtest.h>

#include <string>

#include "blocktrust/version.hpp"

TEST(Version, MatchesPyprojectFormat) {
  const std::string v = blocktrust::version();
  ASSERT_FALSE(v.empty());
  EXPECT_NE(v.find('.'), std::string::npos) << v;
}
